package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/avatarproxy/avatarproxy/config"
)

// runHealthcheck asks the local server's /healthz, for a container
// HEALTHCHECK without curl in the image: `avatarproxy healthcheck [flags]`.
// It reads the port as the server does, from --listen among args or else
// AVATAR_LISTEN; other flags are accepted and ignored, so it can be given
// the server's own.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	listen, err := config.ListenAddress(args, getenv)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := healthcheckClient().Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /healthz answered %d", resp.StatusCode)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// healthcheckTimeout bounds the whole check: a container runtime kills a
// check that overruns its own timeout (compose's is 5 s) and counts a
// failure without saying why.
const healthcheckTimeout = 3 * time.Second

// healthcheckClient asks this server directly. http.DefaultClient would
// send the check through HTTP_PROXY when --listen names a non-loopback
// address (only loopback is exempt), which from inside a container means
// asking a corporate proxy about an address it cannot reach, or telling it
// the pod's address: the check would fail, or pass for another server.
func healthcheckClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true, // one request, then the process exits
		},
		Timeout: healthcheckTimeout,
	}
}
