package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The peers' configurations are checked by small interpreters of the parts of
// nginx, HAProxy and Caddyfile syntax the generators use: each request is routed
// as the peer would route it, so a configuration that sends the benchmark request
// elsewhere, or lets an unrouted path through, fails here rather than in a run.

// block is a directive with its arguments and, for a block directive, children.
type block struct {
	name     string
	args     []string
	children []*block
}

func (b *block) all(name string) []*block {
	var out []*block
	for _, c := range b.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

func (b *block) one(t *testing.T, name string) *block {
	t.Helper()
	list := b.all(name)
	if len(list) != 1 {
		t.Fatalf("%s: %d %q directives, want 1", b.name, len(list), name)
	}
	return list[0]
}

// parseNginx reads nginx syntax: words and quoted strings, ';' ending a simple
// directive, braces around a block's children, '#' comments.
func parseNginx(t *testing.T, text string) *block {
	t.Helper()
	root := &block{name: "main"}
	stack := []*block{root}
	var words []string
	flush := func(children []*block) *block {
		if len(words) == 0 {
			t.Fatalf("empty directive in nginx configuration")
		}
		d := &block{name: words[0], args: words[1:], children: children}
		parent := stack[len(stack)-1]
		parent.children = append(parent.children, d)
		words = nil
		return d
	}
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\n':
		case c == ';':
			flush(nil)
		case c == '{':
			stack = append(stack, flush([]*block{}))
		case c == '}':
			if len(words) > 0 || len(stack) == 1 {
				t.Fatalf("unbalanced '}' in nginx configuration")
			}
			stack = stack[:len(stack)-1]
		case c == '"':
			end := strings.IndexByte(text[i+1:], '"')
			words = append(words, text[i+1:i+1+end])
			i += end + 1
		default:
			end := strings.IndexAny(text[i:], " \t\n;{}")
			if end < 0 {
				end = len(text) - i
			}
			words = append(words, text[i:i+end])
			i += end - 1
		}
	}
	if len(stack) != 1 || len(words) != 0 {
		t.Fatalf("unterminated block or directive in nginx configuration")
	}
	return root
}

// nginxRoute routes a request as nginx does: the server whose server_name is the
// host (else the default server), then an exact location, else the regex locations
// in order, else the longest prefix. It returns the location's proxy_pass target.
func nginxRoute(t *testing.T, http *block, host, path string) string {
	var server *block
	for _, s := range http.all("server") {
		names := s.all("server_name")
		if len(names) == 1 && names[0].args[0] == host {
			server = s
		}
		if server == nil && strings.Contains(strings.Join(s.one(t, "listen").args, " "), "default_server") {
			server = s
		}
	}
	if server == nil {
		t.Fatalf("no server for host %q and no default server", host)
	}
	var prefix, regexHit *block
	for _, loc := range server.all("location") {
		switch loc.args[0] {
		case "=":
			if loc.args[1] == path {
				return proxyPass(loc)
			}
		case "~":
			if regexHit == nil && regexp.MustCompile(loc.args[1]).MatchString(path) {
				regexHit = loc
			}
		default:
			if strings.HasPrefix(path, loc.args[0]) && (prefix == nil || len(loc.args[0]) > len(prefix.args[0])) {
				prefix = loc
			}
		}
	}
	if regexHit != nil {
		return proxyPass(regexHit)
	}
	if prefix != nil {
		return proxyPass(prefix)
	}
	return ""
}

func proxyPass(loc *block) string {
	if list := loc.all("proxy_pass"); len(list) == 1 {
		return list[0].args[0]
	}
	return ""
}

func TestNginxConfig(t *testing.T) {
	for _, tc := range peerCases() {
		t.Run(tc.name, func(t *testing.T) {
			conf := parseNginx(t, nginxConfig(tc.setup))
			wantWorkers := "auto"
			if tc.setup.Workers > 0 {
				wantWorkers = fmt.Sprint(tc.setup.Workers)
			}
			if got := conf.one(t, "worker_processes").args[0]; got != wantWorkers {
				t.Errorf("worker_processes %s, want %s", got, wantWorkers)
			}
			http := conf.one(t, "http")
			if got := http.one(t, "access_log").args; len(got) != 1 || got[0] != "off" {
				t.Errorf("access_log %v, want off", got)
			}
			upstream := http.one(t, "upstream")
			if got := upstream.one(t, "server").args[0]; got != listenAddr(tc.setup.Backend) {
				t.Errorf("upstream server %s", got)
			}
			if got := upstream.one(t, "keepalive").args[0]; got != fmt.Sprint(upstreamIdle) {
				t.Errorf("upstream keepalive %s", got)
			}
			for _, s := range http.all("server") {
				listen := strings.Join(s.one(t, "listen").args, " ")
				if !strings.HasPrefix(listen, listenAddr(tc.setup.Listen)) || strings.Contains(listen, "http2") != tc.setup.HTTP2 {
					t.Errorf("listen %q with HTTP2=%v", listen, tc.setup.HTTP2)
				}
			}
			if got := nginxRoute(t, http, tc.setup.Table.Host, tc.setup.Table.Path); got != "http://backend" {
				t.Errorf("the benchmark request goes to %q", got)
			}
			if tc.setup.Table.MissPath != "" {
				if got := nginxRoute(t, http, tc.setup.Table.Host, tc.setup.Table.MissPath); got != "" {
					t.Errorf("the miss path goes to %q", got)
				}
			}
		})
	}
}

// peerCase is a setup every generator is tried with.
type peerCase struct {
	name  string
	setup peerSetup
}

func peerCases() []peerCase {
	base := peerSetup{Dir: "/run/bench/peer", Listen: 28080, Backend: 29090, Cores: 2}
	one, many, h2, pinned := base, base, base, base
	one.Table = catchAll()
	many.Table = manyRoutes(1000, 10)
	h2.Table, h2.HTTP2 = catchAll(), true
	pinned.Table, pinned.Workers = manyRoutes(200, 3), 1
	return []peerCase{{"one route", one}, {"many routes", many}, {"h2c", h2}, {"pinned", pinned}}
}

// haproxyRoute routes a request through the frontend as HAProxy would with the
// generated maps: exact, then prefix (longest), then regex (first), else the
// default backend. It returns the backend name, "" for none.
func haproxyRoute(cfg string, maps map[string]string, host, path string) string {
	if maps == nil {
		if strings.Contains(cfg, "default_backend backend\n") {
			return "backend"
		}
		return ""
	}
	base := host + path
	entries := func(file string) [][2]string {
		var out [][2]string
		for _, line := range strings.Split(strings.TrimSpace(maps[file]), "\n") {
			if key, value, ok := strings.Cut(line, " "); ok {
				out = append(out, [2]string{key, value})
			}
		}
		return out
	}
	for _, e := range entries("exact.map") {
		if e[0] == base {
			return e[1]
		}
	}
	best := ""
	for _, e := range entries("prefix.map") {
		if strings.HasPrefix(base, e[0]) && len(e[0]) > len(best) {
			best = e[0]
		}
	}
	for _, e := range entries("prefix.map") {
		if e[0] == best && best != "" {
			return e[1]
		}
	}
	for _, e := range entries("regex.map") {
		if regexp.MustCompile(e[0]).MatchString(base) {
			return e[1]
		}
	}
	return ""
}

func TestHAProxyConfig(t *testing.T) {
	for _, tc := range peerCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg, maps := haproxyConfig(tc.setup)
			wantThreads := tc.setup.Cores
			if tc.setup.Workers > 0 {
				wantThreads = tc.setup.Workers
			}
			if !strings.Contains(cfg, fmt.Sprintf("\n    nbthread %d\n", wantThreads)) {
				t.Errorf("no nbthread %d in\n%s", wantThreads, cfg)
			}
			bind := fmt.Sprintf("\n    bind %s", listenAddr(tc.setup.Listen))
			if tc.setup.HTTP2 {
				bind += " proto h2"
			}
			if !strings.Contains(cfg, bind+"\n") {
				t.Errorf("no %q in\n%s", bind, cfg)
			}
			if regexp.MustCompile(`(?m)^\s*log\s`).MatchString(cfg) {
				t.Error("the configuration logs")
			}
			if !strings.Contains(cfg, "server upstream "+listenAddr(tc.setup.Backend)+"\n") {
				t.Errorf("no server line for the backend in\n%s", cfg)
			}
			for file := range maps {
				if !strings.Contains(cfg, filepath.Join(tc.setup.Dir, file)) {
					t.Errorf("the configuration does not read %s", file)
				}
			}
			table := tc.setup.Table
			if got := haproxyRoute(cfg, maps, table.Host, table.Path); got != "backend" {
				t.Errorf("the benchmark request goes to %q", got)
			}
			if table.MissPath != "" {
				if got := haproxyRoute(cfg, maps, table.Host, table.MissPath); got != "" {
					t.Errorf("the miss path goes to %q", got)
				}
			}
		})
	}
}

func TestHAProxyMapsRouteHostlessRoutesForEveryHost(t *testing.T) {
	table := routeTable{Routes: []route{
		{Kind: exactRoute, Path: "/a.b"}, {Kind: prefixRoute, Path: "/p"}, {Host: "x.test", Kind: regexRoute, Path: "/r/[0-9]+"},
	}}
	maps := haproxyMaps(table)
	for _, tc := range []struct {
		host, path string
		want       string
	}{
		{"any.test", "/a.b", "backend"}, {"any.test", "/aXb", ""}, {"other", "/p/q", "backend"},
		{"x.test", "/r/12", "backend"}, {"y.test", "/r/12", ""},
	} {
		if got := haproxyRoute("", maps, tc.host, tc.path); got != tc.want {
			t.Errorf("%s%s goes to %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
}

// parseCaddyfile reads the Caddyfile syntax the generator uses: one directive a
// line, a line ending in '{' opening a block, a line '}' closing it.
func parseCaddyfile(t *testing.T, text string) *block {
	t.Helper()
	root := &block{name: "main"}
	stack := []*block{root}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		parent := stack[len(stack)-1]
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "}":
			if len(stack) == 1 {
				t.Fatal("unbalanced '}' in Caddyfile")
			}
			stack = stack[:len(stack)-1]
		case strings.HasSuffix(line, "{"):
			words := strings.Fields(strings.TrimSuffix(line, "{"))
			d := &block{children: []*block{}}
			if len(words) > 0 {
				d.name, d.args = words[0], words[1:]
			}
			parent.children = append(parent.children, d)
			stack = append(stack, d)
		default:
			words := strings.Fields(line)
			parent.children = append(parent.children, &block{name: words[0], args: words[1:]})
		}
	}
	if len(stack) != 1 {
		t.Fatal("unterminated block in Caddyfile")
	}
	return root
}

// caddyRoute routes a request as Caddy would: the site whose address names the
// host (else the one without a host), then a top-level import, else the handle
// block whose matcher takes the path (a path ending in "/*" is a prefix, others
// are exact; "@name" refers to a path_regexp matcher). It reports whether the
// request reaches the upstream snippet, and fails if two handle blocks match.
func caddyRoute(t *testing.T, file *block, port int, host, path string) bool {
	var site *block
	for _, b := range file.children {
		switch b.name {
		case fmt.Sprintf("http://%s:%d", host, port):
			site = b
		case fmt.Sprintf("http://:%d", port):
			if site == nil {
				site = b
			}
		}
	}
	if site == nil {
		return false
	}
	if got := site.one(t, "bind").args; len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("site %s binds %v", site.name, got)
	}
	if imports := site.all("import"); len(imports) > 0 {
		return imports[0].args[0] == "upstream"
	}
	named := map[string]*regexp.Regexp{}
	for _, d := range site.children {
		if strings.HasPrefix(d.name, "@") && len(d.args) == 2 && d.args[0] == "path_regexp" {
			named[d.name] = regexp.MustCompile(d.args[1])
		}
	}
	var hits []*block
	for _, h := range site.all("handle") {
		pattern := h.args[0]
		var hit bool
		switch {
		case strings.HasPrefix(pattern, "@"):
			hit = named[pattern] != nil && named[pattern].MatchString(path)
		case strings.HasSuffix(pattern, "/*"):
			hit = strings.HasPrefix(path, strings.TrimSuffix(pattern, "*"))
		default:
			hit = path == pattern
		}
		if hit {
			hits = append(hits, h)
		}
	}
	if len(hits) > 1 {
		t.Fatalf("%s%s matches %d handle blocks", host, path, len(hits))
	}
	return len(hits) == 1 && len(hits[0].all("import")) == 1 && hits[0].all("import")[0].args[0] == "upstream"
}

func TestCaddyConfig(t *testing.T) {
	for _, tc := range peerCases() {
		t.Run(tc.name, func(t *testing.T) {
			file := parseCaddyfile(t, caddyConfig(tc.setup))
			global := file.children[0]
			if global.name != "" {
				t.Fatalf("the first block is %q, want the global options", global.name)
			}
			for _, option := range []string{"admin", "auto_https"} {
				if got := global.one(t, option).args; len(got) != 1 || got[0] != "off" {
					t.Errorf("%s %v, want off", option, got)
				}
			}
			h2c := false
			for _, servers := range global.all("servers") {
				h2c = strings.Contains(strings.Join(servers.one(t, "protocols").args, " "), "h2c")
			}
			if h2c != tc.setup.HTTP2 {
				t.Errorf("h2c enabled: %v, want %v", h2c, tc.setup.HTTP2)
			}
			snippet := file.one(t, "(upstream)")
			proxy := snippet.one(t, "reverse_proxy")
			if proxy.args[0] != listenAddr(tc.setup.Backend) {
				t.Errorf("reverse_proxy to %s", proxy.args[0])
			}
			transport := proxy.one(t, "transport")
			if got := transport.one(t, "keepalive_idle_conns_per_host").args[0]; got != fmt.Sprint(upstreamIdle) {
				t.Errorf("idle connections %s", got)
			}
			table := tc.setup.Table
			if !caddyRoute(t, file, tc.setup.Listen, table.Host, table.Path) {
				t.Error("the benchmark request does not reach the upstream")
			}
			if table.MissPath != "" && caddyRoute(t, file, tc.setup.Listen, table.Host, table.MissPath) {
				t.Error("the miss path reaches the upstream")
			}
		})
	}
}
