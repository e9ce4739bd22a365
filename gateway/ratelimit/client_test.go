package ratelimit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/testredis"
)

func TestNewRedisClient(t *testing.T) {
	srv := testredis.Start(t)
	c, err := NewRedisClient(srv.URL(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping: %v", err)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	locked := testredis.Start(t, "--requirepass", "s3cret")
	withPassword, err := NewRedisClient(locked.URL(), RedisStandalone, pw)
	if err != nil {
		t.Fatal(err)
	}
	defer withPassword.Close()
	if err := withPassword.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping with the password from the file: %v", err)
	}
	without, _ := NewRedisClient(locked.URL(), RedisStandalone, "")
	defer without.Close()
	if err := without.Ping(context.Background()).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("ping without a password: %v; want NOAUTH", err)
	}
	for _, bad := range [][2]string{{"http://x", ""}, {srv.URL(), "ring"}} {
		if _, err := NewRedisClient(bad[0], bad[1], ""); err == nil {
			t.Errorf("url %q mode %q accepted", bad[0], bad[1])
		}
	}
	if _, err := NewRedisClient(srv.URL(), "", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing password file was accepted")
	}
}
