package sockio

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

// BenchmarkRoundTrip is keep-alive traffic over loopback as the HTTP
// server sees it under wrk -c64: 64 connections, and per request the idle,
// read and write deadlines fasthttp sets, one read of a small request and
// one write of a 3 KB answer. "std" serves through the *net.TCPConn
// itself, "sockio" through a Conn. The clients are plain connections in
// the same process, so cpu-ns/op counts both ends, and their own blocking
// syscalls keep the runtime's monitor busy either way: this measures the
// deadlines (about 1.5% of both ends' CPU here), not the scheduler churn
// that raw calls avoid against a client outside Go (perf under wrk).
func BenchmarkRoundTrip(b *testing.B) {
	for _, mode := range []string{"std", "sockio"} {
		b.Run(mode, func(b *testing.B) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			ln := inner
			if mode == "sockio" {
				ln = Listen(inner, time.Second)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go serveRoundTrips(c)
				}
			}()
			b.ReportAllocs()
			b.SetParallelism(32) // 64 connections on 2 cores
			defer testkit.CPUPerOp(b)()
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", inner.Addr().String())
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				req, answer := make([]byte, 64), make([]byte, 3000)
				for pb.Next() {
					if _, err := c.Write(req); err != nil {
						b.Error(err)
						return
					}
					if _, err := io.ReadFull(c, answer); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func serveRoundTrips(c net.Conn) {
	defer c.Close()
	req, answer := make([]byte, 64), make([]byte, 3000)
	for {
		_ = c.SetReadDeadline(time.Now().Add(75 * time.Second)) // idle
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // request
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(answer); err != nil {
			return
		}
	}
}
