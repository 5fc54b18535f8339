package apiauth

import (
	"sync"
	"time"
)

// logLimiter lets through at most perSecond refusal log lines per second
// and counts the rest, so that a flood of bad tokens costs a counter
// increment instead of a log line each; the next line that gets through
// reports how many were suppressed.
type logLimiter struct {
	perSecond  int // <0: unlimited
	mu         sync.Mutex
	window     int64 // unix second of the current window
	used       int
	suppressed int64
}

// allow reports whether a line may be written now and, if so, how many
// lines were suppressed since the last one written.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int64) {
	if l.perSecond < 0 {
		return true, 0
	}
	sec := now.Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	if sec != l.window {
		l.window, l.used = sec, 0
	}
	if l.used >= l.perSecond {
		l.suppressed++
		return false, 0
	}
	l.used++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
