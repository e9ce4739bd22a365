package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
)

// Bounds of one session.
const (
	maxTokenBytes     = 64 << 10
	maxErrorBodyBytes = 4 << 10
	connectTimeout    = 10 * time.Second
	ackTimeout        = 10 * time.Second
	// missedHeartbeats is how many heartbeat intervals without a byte from the
	// controller end the stream.
	missedHeartbeats = 3
	// minHeartbeat guards against a nonsensical interval from the controller.
	minHeartbeat = 10 * time.Millisecond
)

var errStreamGone = errors.New("the controller no longer knows this stream")

// statusError is a non-200 answer from the controller.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("controller answered HTTP %d %s: %s", e.code, http.StatusText(e.code), e.msg)
}

// session opens one stream and serves it until it breaks or ctx ends. proven reports
// whether the stream worked: a snapshot on it decoded and applied (or was the one
// already running), or it lasted stableStreamAfter. Only then does the next attempt
// start again from the shortest backoff.
func (a *Agent) session(ctx context.Context, p *persister) (proven bool, err error) {
	token, err := a.readToken()
	if err != nil {
		return false, err
	}
	tlsConfig, err := a.clientTLS()
	if err != nil {
		return false, err
	}
	conns := &connSet{dialer: net.Dialer{Timeout: connectTimeout, KeepAlive: 15 * time.Second}}
	defer conns.closeAll()
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           conns.dial,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   connectTimeout,
		ResponseHeaderTimeout: connectTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       time.Minute,
	}
	client := &http.Client{Transport: tr}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	resp, err := a.openStream(ctx, client, token)
	if err != nil {
		return false, err
	}
	stream := resp.Header.Get(distribute.HeaderStream)
	hb := heartbeatOf(resp.Header)
	opened := time.Now()
	a.setConnected(true)
	defer a.setConnected(false)
	a.logger.Info("connected to the controller", "stream", stream, "proto", resp.Proto, "heartbeat", hb)

	// The controller sends a heartbeat every interval; silence for three of them
	// means the connection is dead even if TCP has not noticed.
	idle := missedHeartbeats * hb
	watchdog := time.AfterFunc(idle, func() {
		cancel(fmt.Errorf("no data from the controller for %s", idle))
	})
	defer watchdog.Stop()
	body := &activityReader{r: resp.Body, onData: func() { watchdog.Reset(idle) }}

	acks := make(chan struct{}, 1)
	// Lines that do not decode are no base for deltas: the next stream asks for the
	// whole snapshot. They are dropped after the reader stops, so that it cannot
	// keep lines built on them.
	undecodable := false
	defer func() {
		if undecodable {
			a.setHeld(nil)
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer resp.Body.Close() // unblocks the reader before wg.Wait
	defer cancel(nil)
	slot := newLatestSlot()
	wg.Go(func() { a.readFrames(body, slot, cancel) })
	wg.Go(func() { a.ackLoop(ctx, client, token, stream, hb, acks, cancel) })

	applied := false
	for {
		select {
		case <-ctx.Done():
			return applied || time.Since(opened) >= stableStreamAfter, context.Cause(ctx)
		case <-slot.ready:
			lines := slot.take()
			if lines == nil {
				continue
			}
			ok, err := a.applyLines(lines, p)
			if err != nil {
				undecodable = true
				return applied || time.Since(opened) >= stableStreamAfter, err
			}
			applied = applied || ok
			select {
			case acks <- struct{}{}:
			default:
			}
		}
	}
}

// openStream sends the stream request and returns the accepted response.
func (a *Agent) openStream(ctx context.Context, client *http.Client, token string) (*http.Response, error) {
	u := distribute.StreamURL(a.base, distribute.StreamParams{
		Node: a.opts.Node, Role: a.opts.Role, Schema: a.schema, Have: a.have(),
		Delta: true, Base: a.heldDigest(), Instance: a.instance,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	setToken(req, token)
	req.Header.Set("Accept", distribute.ContentTypeFrames)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("connecting to the controller: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readStatusError(resp)
	}
	return resp, nil
}

func readStatusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = "(no message)"
	}
	return &statusError{code: resp.StatusCode, msg: msg}
}

func setToken(req *http.Request, token string) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
}

func heartbeatOf(h http.Header) time.Duration {
	ms, err := strconv.ParseInt(h.Get(distribute.HeaderHeartbeatMs), 10, 64)
	if err != nil || ms <= 0 {
		return distribute.DefaultHeartbeatInterval
	}
	return max(time.Duration(ms)*time.Millisecond, minHeartbeat)
}

// readFrames reads the stream, keeping only the newest snapshot not yet applied, so
// that a slow Apply skips versions that are already stale and heartbeats keep being
// read meanwhile. Every snapshot frame and delta frame is turned into lines here, in
// stream order, since each delta is computed against the frame before it; a frame that
// cannot be read, or a delta against other lines than this replica holds, ends the
// stream, and the next one starts from a whole snapshot.
func (a *Agent) readFrames(body io.Reader, slot *latestSlot, cancel context.CancelCauseFunc) {
	for {
		t, payload, err := distribute.ReadFrame(body, a.maxFrame)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the controller closed the stream")
			}
			cancel(fmt.Errorf("reading the stream: %w", err))
			return
		}
		var lines *distribute.SnapshotLines
		switch t {
		case distribute.FrameSnapshot:
			lines, err = distribute.ParseSnapshotLines(payload, a.maxFrame)
		case distribute.FrameDelta:
			lines, err = a.held().ApplyDelta(payload, a.maxFrame)
		default:
			continue
		}
		if err != nil {
			// Forget the lines: the controller no longer agrees on them, or the
			// frames built on them cannot be read, so the next stream asks for the
			// whole snapshot rather than another delta against them.
			a.setHeld(nil)
			cancel(fmt.Errorf("reading a %d-byte frame: %w", len(payload), err))
			return
		}
		// Offered to the session before they are noted as held, so that lines seen
		// held have been offered: the session applies them or newer ones next.
		slot.put(lines)
		a.setHeld(lines)
	}
}

// applyLines decodes and applies one snapshot, and reports whether the replica now
// runs it. A snapshot that does not apply is recorded for the ack and the stream goes
// on; one that cannot be decoded ends the stream, since the bytes on it cannot be
// trusted.
func (a *Agent) applyLines(lines *distribute.SnapshotLines, p *persister) (bool, error) {
	snap, err := a.decoder.DecodeLines(lines)
	if err != nil {
		return false, err
	}
	if snap.Version != "" && snap.Version == a.appliedVersion() {
		return true, nil
	}
	start := time.Now()
	if err := a.apply(snap, SourceController); err != nil {
		a.logger.Error("snapshot does not apply; keeping the previous one", "version", snap.Version, "error", err)
		return false, nil
	}
	a.logger.Info("applied snapshot", "version", snap.Version, "schema", snap.SchemaVersion,
		"bytes", lines.Size(), "took", time.Since(start).Round(time.Microsecond))
	p.submitFunc(snap.Version, lines.Payload)
	return true, nil
}

// ackLoop tells the controller what this replica runs after every apply and, as a
// keepalive, every heartbeat interval. It reads the token file before every ack, since
// a projected token may rotate or expire while the stream lasts; the file is small, and
// an unreadable one leaves the last token read in use.
func (a *Agent) ackLoop(ctx context.Context, client *http.Client, token, stream string, hb time.Duration,
	wake <-chan struct{}, cancel context.CancelCauseFunc) {
	ticker := time.NewTicker(hb)
	defer ticker.Stop()
	lastTokenErr := ""
	reporter := &ackReporters{outcomes: newOutcomeReporter(a.opts.Outcomes), edges: newEdgeReporter(a.opts.Edges)}
	for {
		if fresh, err := a.readToken(); err == nil {
			token, lastTokenErr = fresh, ""
		} else if err.Error() != lastTokenErr {
			lastTokenErr = err.Error()
			a.logger.Warn("cannot read the token again; acking with the previous one", "error", err)
		}
		more, err := a.sendAck(ctx, client, token, stream, reporter)
		var se *statusError
		switch {
		case ctx.Err() != nil:
			return
		case errors.As(err, &se) && se.code == http.StatusNotFound:
			cancel(errStreamGone)
			return
		case err != nil:
			a.logger.Warn("could not ack", "error", err)
		}
		// Outcome reports that did not fit go out soon after, rather than a whole
		// heartbeat later.
		var soon <-chan time.Time
		if more && err == nil {
			soon = time.After(hb / maxAcksPerHeartbeat)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-ticker.C:
		case <-soon:
		}
	}
}

// ackReporters choose the outcome and edge reports of one stream's acks.
type ackReporters struct {
	outcomes *outcomeReporter
	edges    *edgeReporter
}

// sendAck posts one ack with the outcome and edge reports that fit, and reports
// whether changed totals remain for the next one.
func (a *Agent) sendAck(ctx context.Context, client *http.Client, token, stream string, reporter *ackReporters) (more bool, err error) {
	outcomes, moreOutcomes := reporter.outcomes.pending()
	edges, moreEdges := reporter.edges.pending()
	body, n, m, err := encodeAck(a.currentAck(stream), outcomes, edges)
	if err != nil {
		return false, err
	}
	more = moreOutcomes || moreEdges || n < len(outcomes) || m < len(edges)
	if err := a.postAck(ctx, client, token, body); err != nil {
		return more, err
	}
	reporter.outcomes.accept(outcomes[:n])
	reporter.edges.accept(edges[:m])
	return more, nil
}

func (a *Agent) postAck(ctx context.Context, client *http.Client, token string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, distribute.AcksURL(a.base), bytes.NewReader(body))
	if err != nil {
		return err
	}
	setToken(req, token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readStatusError(resp)
	}
	// Controllers older than the header send none; the last count stands then.
	if n, err := strconv.Atoi(resp.Header.Get(distribute.HeaderReplicas)); err == nil && n > 0 {
		a.replicas.Store(int64(n))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBodyBytes))
	return nil
}

// readToken reads the token file; projected tokens rotate, so it is read per attempt.
func (a *Agent) readToken() (string, error) {
	if a.opts.TokenFile == "" {
		return "", nil
	}
	b, err := readLimited(a.opts.TokenFile, maxTokenBytes)
	if err != nil {
		return "", fmt.Errorf("reading token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("token file %s is empty", a.opts.TokenFile)
	}
	return token, nil
}

// clientTLS returns the TLS config for one session, reading CAFile again so that a
// rotated CA bundle is picked up.
func (a *Agent) clientTLS() (*tls.Config, error) {
	var cfg *tls.Config
	switch {
	case a.opts.TLSConfig != nil:
		cfg = a.opts.TLSConfig.Clone()
	case a.opts.CAFile != "":
		pem, err := os.ReadFile(a.opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", a.opts.CAFile)
		}
		cfg = &tls.Config{RootCAs: pool}
	default:
		cfg = &tls.Config{}
	}
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	return cfg, nil
}

// connSet dials and remembers a session's open connections, so that the session can
// close them all when it ends: a connection whose stream was just cancelled is not
// idle yet, and left open it would keep the controller waiting at shutdown.
type connSet struct {
	dialer net.Dialer

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func (c *connSet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		conn.Close()
		return nil, errors.New("session ended")
	}
	if c.conns == nil {
		c.conns = map[*trackedConn]struct{}{}
	}
	tc := &trackedConn{Conn: conn, set: c}
	c.conns[tc] = struct{}{}
	return tc, nil
}

func (c *connSet) closeAll() {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for tc := range conns {
		_ = tc.Conn.Close()
	}
}

// trackedConn leaves its set when closed.
type trackedConn struct {
	net.Conn
	set *connSet
}

func (t *trackedConn) Close() error {
	t.set.mu.Lock()
	delete(t.set.conns, t)
	t.set.mu.Unlock()
	return t.Conn.Close()
}

// activityReader calls onData whenever a read returns data.
type activityReader struct {
	r      io.Reader
	onData func()
}

func (r *activityReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.onData()
	}
	return n, err
}

// latestSlot holds at most one value, the newest put; ready signals that it holds one.
type latestSlot struct {
	mu    sync.Mutex
	value *distribute.SnapshotLines
	ready chan struct{}
}

func newLatestSlot() *latestSlot { return &latestSlot{ready: make(chan struct{}, 1)} }

func (s *latestSlot) put(v *distribute.SnapshotLines) {
	s.mu.Lock()
	s.value = v
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func (s *latestSlot) take() *distribute.SnapshotLines {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.value
	s.value = nil
	return v
}
