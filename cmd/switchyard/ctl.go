package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/admin"
)

// ctlUsage is the help text of switchyard ctl.
const ctlUsage = `usage: switchyard ctl [--admin URL] [--token-file FILE] [-o table|json] <command> [args]

commands:
  routes                               compiled routes in match order
  match --host H [--path P] [--method M] [--header 'Name: value']... [--query name=value]...
        [--port N] [--listener NAME] [--all]
                                       which rule a request would hit, and why the others do not
  backends                             backends, endpoints, health, ejections, breakers, in-flight requests
  backends drain|undrain NAMESPACE/SERVICE ADDRESS [--port N]
                                       stop (or resume) new requests to an endpoint (ip:port, or an IP)
  ratelimits                           rate limits and where they apply
  rollouts                             rollouts, their phase, step and weight
  rollouts promote|pause|resume|abort NAMESPACE/NAME [--full]
                                       act on a rollout (--full: promote straight to 100%)
  gateways                             gateway replicas of a controller and their lag
  graph                                service graph of a controller: caller -> callee edges, rates, latencies
  status                               objects with a condition that is not healthy

The token comes from --token-file, else the SWITCHYARD_ADMIN_TOKEN environment variable.
`

// ctlTokenEnv names the environment variable holding the admin token.
const ctlTokenEnv = "SWITCHYARD_ADMIN_TOKEN"

// ctlCommand runs one ctl command with its arguments.
type ctlCommand func(c *ctlContext, args []string) error

var ctlCommands = map[string]ctlCommand{
	"routes":     ctlRoutes,
	"match":      ctlMatch,
	"backends":   ctlBackends,
	"ratelimits": ctlRateLimits,
	"rollouts":   ctlRollouts,
	"gateways":   ctlGateways,
	"graph":      ctlGraph,
	"status":     ctlStatus,
}

// ctlContext is what a command works with: the client, the output and its format.
type ctlContext struct {
	client *ctlClient
	out    io.Writer
	// usage receives the help text and flag errors.
	usage io.Writer
	// output is table or json.
	output string
}

func runCtl(args []string) error { return ctl(args, os.Stdout, os.Stderr, os.Getenv) }

// ctl parses the global flags, picks the command and runs it. Answers go to out,
// help and flag errors to usage.
func ctl(args []string, out, usage io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.Usage = func() { fmt.Fprint(fs.Output(), ctlUsage) }
	adminURL := fs.String("admin", "http://"+admin.DefaultAddr, "base URL of the admin API")
	tokenFile := fs.String("token-file", "", "file holding the admin token; default $"+ctlTokenEnv)
	timeout := fs.Duration("timeout", 10*time.Second, "how long a request may take")
	c := &ctlContext{out: out, usage: usage, output: "table"}
	registerOutput(fs, c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command given")
	}
	name := fs.Arg(0)
	cmd, ok := ctlCommands[name]
	if !ok {
		return fmt.Errorf("unknown command %q; run 'switchyard ctl -h' for the commands", name)
	}
	token := getenv(ctlTokenEnv)
	if *tokenFile != "" {
		var err error
		if token, err = admin.LoadToken(*tokenFile); err != nil {
			return err
		}
	}
	client, err := newCtlClient(*adminURL, token, *timeout)
	if err != nil {
		return err
	}
	c.client = client
	return cmd(c, fs.Args()[1:])
}

func registerOutput(fs *flag.FlagSet, c *ctlContext) {
	fs.Func("o", "output format: table or json", func(v string) error {
		if v != "table" && v != "json" {
			return fmt.Errorf("want table or json, not %q", v)
		}
		c.output = v
		return nil
	})
}

// commandFlags returns a flag set for a command's own flags, which also takes -o.
func (c *ctlContext) commandFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("ctl "+name, flag.ContinueOnError)
	fs.SetOutput(c.usage)
	fs.Usage = func() { fmt.Fprint(fs.Output(), ctlUsage) }
	registerOutput(fs, c)
	return fs
}

// parseInterspersed parses flags wherever they are among the positional arguments,
// which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// show prints an answer: its JSON when asked for, else the table render makes.
func (c *ctlContext) show(body []byte, v any, render func(io.Writer, any) error) error {
	if c.output == "json" {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, body, "", "  "); err != nil {
			return err
		}
		pretty.WriteByte('\n')
		_, err := c.out.Write(pretty.Bytes())
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	return render(c.out, v)
}

// ctlClient sends requests to an admin API.
type ctlClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

func newCtlClient(base, token string, timeout time.Duration) (*ctlClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--admin %q: want a URL such as http://%s", base, admin.DefaultAddr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &ctlClient{base: u, token: token, http: &http.Client{Timeout: timeout}}, nil
}

// problemError is an error answer of the admin API.
type problemError struct {
	status  int
	problem admin.Problem
}

func (e *problemError) Error() string {
	if e.problem.Detail == "" {
		return fmt.Sprintf("%d %s", e.status, http.StatusText(e.status))
	}
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.problem.Detail)
}

// do sends a request to path (escaped segments) with query and returns the body of
// a 200 answer; other answers become errors.
func (cl *ctlClient) do(method, path string, query url.Values) ([]byte, error) {
	u := *cl.base
	u.RawPath = u.Path + path
	var err error
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return nil, err
	}
	u.RawQuery = query.Encode()
	req, err := http.NewRequest(method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		perr := &problemError{status: resp.StatusCode}
		if json.Unmarshal(body, &perr.problem) != nil {
			perr.problem.Detail = strings.TrimSpace(string(body))
		}
		return nil, perr
	}
	return body, nil
}

func (c *ctlContext) get(path string, query url.Values, v any, render func(io.Writer, any) error) error {
	body, err := c.client.do(http.MethodGet, path, query)
	if err != nil {
		return err
	}
	return c.show(body, v, render)
}

func (c *ctlContext) post(path string, query url.Values, v any, render func(io.Writer, any) error) error {
	body, err := c.client.do(http.MethodPost, path, query)
	if err != nil {
		return err
	}
	return c.show(body, v, render)
}

// noArgs parses a listing command's flags and refuses arguments.
func (c *ctlContext) noArgs(name string, args []string) error {
	rest, err := parseInterspersed(c.commandFlags(name), args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", name, rest)
	}
	return nil
}

func ctlRoutes(c *ctlContext, args []string) error {
	if err := c.noArgs("routes", args); err != nil {
		return err
	}
	return c.get("/api/v1/routes", nil, &admin.RoutesView{}, renderRoutes)
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ", ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func ctlMatch(c *ctlContext, args []string) error {
	fs := c.commandFlags("match")
	host := fs.String("host", "", "the request's Host (required)")
	path := fs.String("path", "/", "the request target, escaped as on the wire, optionally with ?query")
	method := fs.String("method", http.MethodGet, "the request method")
	port := fs.Int("port", 0, "only the listeners on this port")
	listener := fs.String("listener", "", "only the listener of this name")
	all := fs.Bool("all", false, "also list the matches whose route's hostnames do not accept the host")
	var headers, queries stringList
	fs.Var(&headers, "header", "a request header, 'Name: value' (repeatable)")
	fs.Var(&queries, "query", "a query parameter, name=value (repeatable)")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 || *host == "" {
		return errors.New("match needs --host and takes no arguments")
	}
	q := url.Values{"host": {*host}, "path": {*path}, "method": {*method}, "header": headers, "query": queries}
	if *port != 0 {
		q.Set("port", strconv.Itoa(*port))
	}
	if *listener != "" {
		q.Set("listener", *listener)
	}
	if *all {
		q.Set("all", "true")
	}
	return c.get("/api/v1/routes/match", q, &admin.MatchView{}, renderMatch)
}

func ctlBackends(c *ctlContext, args []string) error {
	fs := c.commandFlags("backends")
	port := fs.Int("port", 0, "with drain or undrain: only this Service port")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return c.get("/api/v1/backends", nil, &admin.BackendsView{}, renderBackends)
	}
	if len(rest) != 3 || (rest[0] != "drain" && rest[0] != "undrain") {
		return errors.New("usage: backends [drain|undrain NAMESPACE/SERVICE ADDRESS [--port N]]")
	}
	ns, name, err := splitName(rest[1])
	if err != nil {
		return err
	}
	var q url.Values
	if *port != 0 {
		q = url.Values{"port": {strconv.Itoa(*port)}}
	}
	path := "/api/v1/backends/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/endpoints/" +
		url.PathEscape(rest[2]) + "/" + rest[0]
	return c.post(path, q, &admin.DrainView{}, renderDrain)
}

func ctlRateLimits(c *ctlContext, args []string) error {
	if err := c.noArgs("ratelimits", args); err != nil {
		return err
	}
	return c.get("/api/v1/ratelimits", nil, &admin.RateLimitsView{}, renderRateLimits)
}

func ctlRollouts(c *ctlContext, args []string) error {
	fs := c.commandFlags("rollouts")
	full := fs.Bool("full", false, "with promote: go straight to 100%")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return c.get("/api/v1/rollouts", nil, &rolloutList{}, renderRollouts)
	}
	if len(rest) != 2 || !isRolloutAction(rest[0]) {
		return fmt.Errorf("usage: rollouts [%s NAMESPACE/NAME]", strings.Join(admin.RolloutActions, "|"))
	}
	ns, name, err := splitName(rest[1])
	if err != nil {
		return err
	}
	var q url.Values
	if *full {
		q = url.Values{"full": {"true"}}
	}
	path := "/api/v1/rollouts/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/" + rest[0]
	return c.post(path, q, &admin.RolloutView{}, renderRollout)
}

func isRolloutAction(action string) bool {
	for _, a := range admin.RolloutActions {
		if a == action {
			return true
		}
	}
	return false
}

func ctlGateways(c *ctlContext, args []string) error {
	if err := c.noArgs("gateways", args); err != nil {
		return err
	}
	return c.get("/api/v1/gateways", nil, &admin.GatewaysView{}, renderGateways)
}

func ctlGraph(c *ctlContext, args []string) error {
	if err := c.noArgs("graph", args); err != nil {
		return err
	}
	return c.get("/api/v1/graph", nil, &admin.GraphView{}, renderGraph)
}

func ctlStatus(c *ctlContext, args []string) error {
	if err := c.noArgs("status", args); err != nil {
		return err
	}
	return c.get("/api/v1/status", nil, &statusProblems{}, renderStatus)
}

// splitName reads NAMESPACE/NAME; a bare NAME is in the default namespace.
func splitName(arg string) (string, string, error) {
	ns, name, found := strings.Cut(arg, "/")
	if !found {
		ns, name = "default", arg
	}
	if ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%q is not NAMESPACE/NAME", arg)
	}
	return ns, name, nil
}
