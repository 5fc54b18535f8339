package svc

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/entra-go/secure-api/internal/testkit"
)

// TestMainHelper is the child process of TestMainExitAndSignal.
func TestMainHelper(t *testing.T) {
	switch os.Getenv("SVC_MAIN_HELPER") {
	case "fail":
		Main("helper", func(context.Context, *slog.Logger) error { return errors.New("boom") })
	case "signal":
		Main("helper", func(ctx context.Context, log *slog.Logger) error {
			log.Info("ready")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(20 * time.Second):
				return errors.New("no signal")
			}
		})
	}
}

func TestMainExitAndSignal(t *testing.T) {
	helper := func(mode string) (*exec.Cmd, *testkit.SyncBuffer) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMainHelper$")
		cmd.Env = append(os.Environ(), "SVC_MAIN_HELPER="+mode)
		stderr := &testkit.SyncBuffer{} // written by exec while the test reads it
		cmd.Stderr = stderr
		return cmd, stderr
	}

	cmd, stderr := helper("fail")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("failing run: %v (want exit status 1)", err)
	}
	if !strings.Contains(stderr.String(), "level=ERROR msg=helper err=boom") {
		t.Fatalf("failing run logged %q", stderr.String())
	}

	// SIGTERM cancels the context: run returns nil and the process exits 0.
	cmd, stderr = helper("signal")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "msg=ready") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal("helper never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v; stderr %q", err, stderr.String())
	}
}
