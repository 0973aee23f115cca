// Command loadgen is the load-test helper behind scripts/loadtest.sh. `loadgen
// fake` runs a stand-in Green API and WhatsApp CDN on 127.0.0.1 where every
// chat has an avatar drawn from a small pool of generated pictures, so tens of
// thousands of distinct chats cost no picture generation. `loadgen run`
// requests a range of distinct chats exactly once each and reports
// throughput, latency percentiles, the Cache-Status mix and, given a pid, that
// process's peak RSS. It is a benchmark tool, not part of the server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "fake":
		err = runFake(os.Args[2:])
	case "run":
		err = runLoad(os.Args[2:])
	case "ports":
		err = runPorts(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  loadgen fake -env FILE [-pictures 8]
      serve a fake Green API and CDN on 127.0.0.1 until SIGINT/SIGTERM; FILE
      gets AVATAR_* settings that point avatarproxy at them
  loadgen run -url 'http://127.0.0.1:8080/avatar/{n}@c.us.jpg?size=128' -count N
      [-first 79100000000] [-c 32] [-H 'Name: value'] [-pid PID]
      request each chat number first..first+N-1 once ({n} in the URL), print
      one line of key=value figures
  loadgen ports [-n 1]
      print n free 127.0.0.1 TCP ports, one a line
`)
	os.Exit(2)
}

// Credentials of the fake instance; they guard nothing on loopback.
const (
	fakeID    = "1101000777"
	fakeToken = "loadgen0token0not0a0secret"
)

func runFake(args []string) error {
	fs := flag.NewFlagSet("fake", flag.ExitOnError)
	envFile := fs.String("env", "", "write the avatarproxy settings here once listening (required)")
	pictures := fs.Int("pictures", 8, "distinct 640 px pictures shared by all chats")
	_ = fs.Parse(args)
	if *envFile == "" || *pictures < 1 {
		return errors.New("fake: -env is required and -pictures must be at least 1")
	}

	cdn := fake.NewCDN()
	cdnURL, stopCDN, err := serve(cdn)
	if err != nil {
		return err
	}
	defer stopCDN()
	// Every chat downloads its own copy of one of a few pictures: the proxy
	// holds one source per chat whatever the bytes, as with real avatars.
	answers := make([]fake.Answer, *pictures)
	for i := range answers {
		path := cdn.Add(fake.Portrait("loadgen-"+strconv.Itoa(i), 640))
		answers[i] = fake.AvatarAnswer(cdn.URL(cdnURL, path, time.Now().Add(7*24*time.Hour)))
	}
	gw := fake.NewGreenAPI(fakeID, fakeToken)
	gw.Default = func(chatID string) fake.Answer {
		h := fnv.New32a()
		h.Write([]byte(chatID))
		return answers[h.Sum32()%uint32(len(answers))]
	}
	gwURL, stopGW, err := serve(gw)
	if err != nil {
		return err
	}
	defer stopGW()

	env := fmt.Sprintf("AVATAR_UPSTREAM=greenapi\nAVATAR_GREENAPI_URL=%s\nAVATAR_GREENAPI_ID_INSTANCE=%s\n"+
		"AVATAR_GREENAPI_API_TOKEN_INSTANCE=%s\nAVATAR_CDN_ALLOW=%s\nAVATAR_CDN_ALLOW_PRIVATE=true\n",
		gwURL, fakeID, fakeToken, strings.TrimPrefix(cdnURL, "http://"))
	// Written whole and renamed, so a reader polling for the file never
	// sees half of it.
	if err := os.WriteFile(*envFile+".tmp", []byte(env), 0o600); err != nil {
		return err
	}
	if err := os.Rename(*envFile+".tmp", *envFile); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Fprintf(os.Stderr, "loadgen fake: gateway_calls=%d cdn_downloads=%d\n", gw.Recorder.Calls(), cdn.Recorder.Calls())
	return nil
}

// runPorts prints free loopback ports. All are held open until all are
// found, so they differ; another process may still take one before the
// caller binds it, which the script notices as a failed start.
func runPorts(args []string) error {
	fs := flag.NewFlagSet("ports", flag.ExitOnError)
	n := fs.Int("n", 1, "how many ports")
	_ = fs.Parse(args)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range *n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, ln)
	}
	for _, ln := range lns {
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// serve runs h on a free 127.0.0.1 port.
func serve(h http.Handler) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func runLoad(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	tmpl := fs.String("url", "", "URL with {n} where the chat number goes (required)")
	first := fs.Int64("first", 79100000000, "first chat number")
	count := fs.Int("count", 1000, "distinct chats, each requested once")
	conc := fs.Int("c", 32, "requests in flight")
	pid := fs.Int("pid", 0, "report VmHWM and VmRSS of this process at the end")
	progress := fs.Duration("progress", 0, "print progress to stderr this often (0: never)")
	timeout := fs.Duration("timeout", 60*time.Second, "deadline of one request")
	var hdrs headers
	fs.Var(&hdrs, "H", "request header 'Name: value' (repeatable)")
	_ = fs.Parse(args)
	if !strings.Contains(*tmpl, "{n}") || *count < 1 || *conc < 1 {
		return errors.New("run: -url with {n}, -count >= 1 and -c >= 1 are required")
	}
	for _, h := range hdrs {
		if !strings.Contains(h, ":") {
			return fmt.Errorf("run: header %q is not 'Name: value'", h)
		}
	}

	client := &http.Client{
		Timeout: *timeout,
		Transport: &http.Transport{
			MaxIdleConns: *conc, MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc,
			DisableCompression: true,
		},
	}
	lat := make([]time.Duration, *count)
	var (
		next, done atomic.Int64
		mu         sync.Mutex
		codes      = map[string]int{}
		cache      = map[string]int{}
		errs       int
		firstErr   error
	)
	stopProgress := make(chan struct{})
	start := time.Now()
	if *progress > 0 {
		go func() {
			t := time.NewTicker(*progress)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					n := done.Load()
					line := fmt.Sprintf("loadgen: %d/%d done, %.0f req/s", n, *count, float64(n)/time.Since(start).Seconds())
					if *pid > 0 {
						if hwm, rss, err := procMem(*pid); err == nil {
							line += fmt.Sprintf(", VmHWM %.1f MiB, VmRSS %.1f MiB", hwm, rss)
						}
					}
					fmt.Fprintln(os.Stderr, line)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			localCodes, localCache := map[string]int{}, map[string]int{}
			localErrs := 0
			var localFirst error
			for {
				i := next.Add(1) - 1
				if i >= int64(*count) {
					break
				}
				u := strings.ReplaceAll(*tmpl, "{n}", strconv.FormatInt(*first+i, 10))
				t0 := time.Now()
				code, cs, err := get(client, u, hdrs)
				lat[i] = time.Since(t0)
				done.Add(1)
				if err != nil {
					localErrs++
					if localFirst == nil {
						localFirst = err
					}
					continue
				}
				localCodes[strconv.Itoa(code)]++
				localCache[cs]++
			}
			mu.Lock()
			for k, v := range localCodes {
				codes[k] += v
			}
			for k, v := range localCache {
				cache[k] += v
			}
			errs += localErrs
			if firstErr == nil {
				firstErr = localFirst
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)

	slices.Sort(lat)
	fmt.Printf("count=%d errors=%d secs=%.2f rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f codes=%s cache=%s",
		*count, errs, elapsed.Seconds(), float64(*count)/elapsed.Seconds(),
		ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1]),
		joinCounts(codes), joinCounts(cache))
	if *pid > 0 {
		hwm, rss, err := procMem(*pid)
		if err != nil {
			return err
		}
		fmt.Printf(" vmhwm_mib=%.1f vmrss_mib=%.1f", hwm, rss)
	}
	fmt.Println()
	if errs > 0 {
		return fmt.Errorf("%d of %d requests failed, first: %v", errs, *count, firstErr)
	}
	return nil
}

// get requests u and returns the status and a compact Cache-Status
// ("hit;detail=storage" for "avatarproxy; hit; detail=storage", "-" when
// absent). The body is read to the end so the connection is reused.
func get(client *http.Client, u string, hdrs headers) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	for _, h := range hdrs {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", err
	}
	cs := resp.Header.Get("Cache-Status")
	if cs == "" {
		cs = "-"
	}
	cs = strings.ReplaceAll(strings.TrimPrefix(cs, "avatarproxy; "), " ", "")
	return resp.StatusCode, cs, nil
}

// percentile is the nearest-rank percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// joinCounts formats a count map as "k:v,k:v", keys sorted.
func joinCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + strconv.Itoa(m[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// procMem reads VmHWM (peak resident set) and VmRSS of pid, in MiB.
func procMem(pid int) (hwm, rss float64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s of pid %d: %w", name, pid, err)
		}
		if name == "VmHWM" {
			hwm = kb / 1024
		} else {
			rss = kb / 1024
		}
	}
	if hwm == 0 {
		return 0, 0, fmt.Errorf("no VmHWM for pid %d", pid)
	}
	return hwm, rss, nil
}
