// Command apibench measures the HTTP cost of apiauth on loopback: the same
// handler unprotected, protected with repeat tokens (validated-token cache),
// protected with first-seen tokens, and behind the standard-library floor
// validator with first-seen tokens.
//
//	go build -o bin/apibench ./bench/cmd/apibench
//	bin/apibench -reps 3 -d 8s -c 32        # needs wrk (apt-get install wrk) and taskset
//
// The server runs as a child process pinned to CPU 0 with GOMAXPROCS=1, wrk
// pinned to CPU 1; cases are interleaved in sweeps and every ratio is taken
// within a sweep. Everything binds to 127.0.0.1; every run is bounded by -d.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/bench"
	"github.com/entra-go/secure-api/internal/httpx"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serve(); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// ---- server ----

type answer struct {
	OID, TID, Name, Username, AppID string
	Scopes                          []string
	Aud, Iss, Ver                   string
	Exp                             time.Time
}

func handle(w http.ResponseWriter, r *http.Request) {
	p, ok := apiauth.PrincipalFrom(r.Context())
	if !ok {
		p = &staticPrincipal // the unprotected case answers the same shape
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer{p.ObjectID, p.TenantID, p.Name, p.Username, p.AppID, p.Scopes, p.Audience, p.Issuer, p.Version, p.ExpiresAt})
}

var staticPrincipal = apiauth.Principal{ObjectID: "e35a8c02-2ed7-489f-ac07-c14c1234b3c6", TenantID: bench.Tenant,
	Name: "Reader Example", Username: "reader@dev.test", AppID: bench.SPAID, Scopes: []string{"access_as_user"},
	Audience: bench.APIID, Issuer: "https://localhost/" + bench.Tenant + "/v2.0", Version: "2.0"}

// floorMiddleware validates with the standard-library floor and puts an
// equivalent Principal in the context.
func floorMiddleware(f *bench.Floor, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		c, err := f.Validate(tok)
		if !ok || err != nil || c.Scp != "access_as_user" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		p := &apiauth.Principal{ObjectID: c.Oid, TenantID: c.Tid, Name: c.Name, Username: c.PreferredUsername, AppID: c.Azp,
			Scopes: strings.Fields(c.Scp), Audience: c.Aud[0], Issuer: c.Iss, Version: c.Ver, ExpiresAt: time.Unix(c.Exp, 0)}
		next.ServeHTTP(w, r.WithContext(apiauth.WithPrincipal(r.Context(), p, tok)))
	})
}

func serve() error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	tokens := fs.Int("tokens", 2000, "distinct tokens to write")
	dir := fs.String("dir", os.TempDir(), "where to write tokens.txt")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole serve run")
	_ = fs.Parse(os.Args[2:])
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}

	f := bench.NewFixture()
	defer f.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mk := func(cacheBytes int) (*apiauth.Validator, error) {
		v, err := apiauth.New(apiauth.Config{Authority: f.Authority, ClientID: bench.APIID, HTTPClient: f.Client, Logger: quiet, CacheBytes: cacheBytes})
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return v, v.WaitReady(ctx)
	}
	cached, err := mk(0)
	if err != nil {
		return err
	}
	fresh, err := mk(1) // never hits: every token is first-seen
	if err != nil {
		return err
	}
	reqs := apiauth.RequireScope("access_as_user")
	mux := http.NewServeMux()
	h := http.HandlerFunc(handle)
	mux.Handle("GET /plain", h)
	mux.Handle("GET /api", cached.Protect(h, reqs))
	mux.Handle("GET /api-new", fresh.Protect(h, reqs))
	mux.Handle("GET /floor", floorMiddleware(f.NewFloor(), h))
	mux.HandleFunc("GET /_cpu", func(w http.ResponseWriter, r *http.Request) {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		us := ru.Utime.Sec*1e6 + ru.Utime.Usec + ru.Stime.Sec*1e6 + ru.Stime.Usec
		fmt.Fprint(w, us)
	})

	toks := f.Tokens(*tokens)
	tf := *dir + "/apibench-tokens.txt"
	if err := os.WriteFile(tf, []byte(strings.Join(toks, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("READY %s %s\n", ln.Addr(), tf)
	ctx, stop := signalContext()
	defer stop()
	return httpx.ServeListener(ctx, httpx.NewServer("", mux), ln, quiet)
}

func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // parent closes stdin to stop us
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx, cancel
}

// ---- driver ----

type result struct {
	rps, p50, p99 float64 // req/s, ms
	cpuPerReq     float64 // µs of server CPU per request
}

var cases = []struct {
	name, path string
	cycle      bool // rotate through distinct tokens (Lua script) instead of one header
}{
	{"plain (no auth)", "/plain", false},
	{"apiauth, repeat token", "/api", false},
	{"floor (stdlib), new tokens", "/floor", true},
	{"apiauth, new tokens", "/api-new", true},
}

func run() error {
	reps := flag.Int("reps", 3, "interleaved sweeps")
	d := flag.Duration("d", 8*time.Second, "duration of each wrk run")
	c := flag.Int("c", 32, "connections")
	ntok := flag.Int("tokens", 2000, "distinct tokens")
	flag.Parse()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	srv := exec.Command("taskset", "-c", "0", self, "serve", "-tokens", strconv.Itoa(*ntok))
	srv.Env = append(os.Environ(), "GOMAXPROCS=1")
	stdin, _ := srv.StdinPipe()
	out, _ := srv.StdoutPipe()
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); _ = srv.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	fields := strings.Fields(line)
	if len(fields) != 3 || fields[0] != "READY" {
		return fmt.Errorf("server said %q", line)
	}
	base, tokFile := "http://"+fields[1], fields[2]
	defer os.Remove(tokFile)
	toks, err := os.ReadFile(tokFile)
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(toks), "\n")
	script := os.TempDir() + "/apibench-cycle.lua"
	lua := `tokens = {}
for line in io.lines("` + tokFile + `") do tokens[#tokens+1] = line end
i = 0
request = function()
  i = i + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1]})
end
`
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		return err
	}
	defer os.Remove(script)

	fmt.Printf("apibench: %d sweeps × %d cases × %v, %d connections, server GOMAXPROCS=1 on CPU 0, wrk -t1 on CPU 1, %d distinct tokens\n",
		*reps, len(cases), *d, *c, *ntok)
	res := make([][]result, len(cases))
	for rep := 0; rep < *reps; rep++ {
		for i, cs := range cases {
			args := []string{"-c", "1", "wrk", "-t1", "-c" + strconv.Itoa(*c), "-d" + d.String(), "--latency"}
			if cs.cycle {
				args = append(args, "-s", script)
			} else {
				args = append(args, "-H", "Authorization: Bearer "+first)
			}
			args = append(args, base+cs.path)
			// warm-up
			_ = exec.Command("taskset", append(slices.Clone(args[:5]), "-d1s", args[len(args)-1])...).Run()
			cpu0, err := serverCPU(base)
			if err != nil {
				return err
			}
			o, err := exec.Command("taskset", args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("wrk: %v: %s", err, o)
			}
			cpu1, err := serverCPU(base)
			if err != nil {
				return err
			}
			r, err := parseWrk(string(o))
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", cs.name, err, o)
			}
			r.cpuPerReq = (cpu1 - cpu0) / (r.rps * d.Seconds())
			res[i] = append(res[i], r)
			fmt.Printf("  sweep %d %-28s %8.0f req/s  p50 %.2f ms  p99 %.2f ms  server CPU %.1f µs/req\n", rep+1, cs.name, r.rps, r.p50, r.p99, r.cpuPerReq)
		}
	}
	// Ratios within each sweep.
	ratioOf := func(a, b int, get func(result) float64) (float64, float64, float64) {
		var rs []float64
		for k := range res[a] {
			rs = append(rs, get(res[a][k])/get(res[b][k]))
		}
		slices.Sort(rs)
		return rs[len(rs)/2], rs[0], rs[len(rs)-1]
	}
	med := func(i int, get func(result) float64) float64 {
		var v []float64
		for _, r := range res[i] {
			v = append(v, get(r))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	fmt.Println()
	fmt.Println("| case | req/s (median) | req/s ratio, per sweep: median (min–max) | server CPU/req (median) | capacity ratio = inverse CPU/req ratio, per sweep: median (min–max) | p50 | p99 |")
	fmt.Println("|---|---:|---|---:|---|---:|---:|")
	refs := []int{-1, 0, -1, 2}
	rps := func(r result) float64 { return r.rps }
	invCPU := func(r result) float64 { return 1 / r.cpuPerReq }
	for i, cs := range cases {
		rs, cs2 := "—", "—"
		if refs[i] >= 0 {
			ref := map[int]string{0: "plain", 2: "floor"}[refs[i]]
			m, lo, hi := ratioOf(i, refs[i], rps)
			rs = fmt.Sprintf("%.2f× %s (%.2f–%.2f)", m, ref, lo, hi)
			m, lo, hi = ratioOf(i, refs[i], invCPU)
			cs2 = fmt.Sprintf("%.2f× %s (%.2f–%.2f)", m, ref, lo, hi)
		}
		fmt.Printf("| %s | %.0f | %s | %.1f µs | %s | %.2f ms | %.2f ms |\n", cs.name, med(i, rps), rs,
			med(i, func(r result) float64 { return r.cpuPerReq }), cs2,
			med(i, func(r result) float64 { return r.p50 }), med(i, func(r result) float64 { return r.p99 }))
	}
	return nil
}

func serverCPU(base string) (float64, error) {
	resp, err := http.Get(base + "/_cpu")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
}

var (
	reRPS = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reLat = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)`)
	re4xx = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

func parseWrk(o string) (result, error) {
	var r result
	if m := re4xx.FindStringSubmatch(o); m != nil {
		return r, fmt.Errorf("%s non-2xx responses", m[1])
	}
	m := reRPS.FindStringSubmatch(o)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec")
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, l := range reLat.FindAllStringSubmatch(o, -1) {
		v, _ := strconv.ParseFloat(l[2], 64)
		switch l[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if l[1] == "50" {
			r.p50 = v
		} else {
			r.p99 = v
		}
	}
	return r, nil
}
