package miniotest

import (
	"net/http"
	"testing"
)

func live(s *Server) bool {
	resp, err := http.Get("http://" + s.Endpoint + "/minio/health/live")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func TestStartStopRestart(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Endpoint == b.Endpoint || a.SecretKey == b.SecretKey || a.AccessKey == b.AccessKey {
		t.Fatalf("two servers share an endpoint or credentials: %q %q", a.Endpoint, b.Endpoint)
	}
	if len(a.SecretKey) < 8 || len(a.AccessKey) < 3 {
		t.Fatalf("credentials too short for MinIO: %d/%d chars", len(a.AccessKey), len(a.SecretKey))
	}
	if !live(a) || !live(b) {
		t.Fatal("a started server is not live")
	}

	a.Stop()
	if live(a) {
		t.Fatal("server still answers after Stop")
	}
	if !live(b) {
		t.Fatal("stopping one server stopped the other")
	}
	a.Stop() // a second Stop is a no-op

	endpoint := a.Endpoint
	a.Restart(t)
	if a.Endpoint != endpoint || !live(a) {
		t.Fatalf("after Restart: endpoint %q (was %q), live %v", a.Endpoint, endpoint, live(a))
	}
}
