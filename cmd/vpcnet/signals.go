package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// stoppedBy is the cause of a lab context ended by a signal: "stopped by SIGTERM". It is
// context.Canceled for errors.Is, so code that checks for a cancellation still sees one.
type stoppedBy struct{ sig syscall.Signal }

func (s stoppedBy) Error() string        { return "stopped by " + unix.SignalName(s.sig) }
func (s stoppedBy) Is(target error) bool { return target == context.Canceled }

// labContext ends on SIGINT (Ctrl-C), SIGTERM, and SIGPIPE when stdout or stderr is a pipe whose
// reader is gone (`vpcnet lab up | head -1`); context.Cause then says which (stoppedBy). A
// SIGPIPE of any other pipe is ignored: that write fails with EPIPE and its caller says so. Once
// stdout or stderr is broken, later writes to them fail with EPIPE instead of killing vpcnet, so
// the command can still clean up.
func labContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-ch:
				sig := s.(syscall.Signal)
				if sig == syscall.SIGPIPE && !stdioBroken() {
					continue
				}
				cancel(stoppedBy{sig})
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		if _, ok := signalCause(ctx); ok && stdioBroken() {
			// Keep writes to the broken stream failing with EPIPE rather than killing
			// vpcnet before it reports or exits.
			signal.Ignore(syscall.SIGPIPE)
		}
		cancel(nil)
	}
}

// stdioBroken reports whether stdout or stderr is a pipe or socket whose reader has gone.
func stdioBroken() bool { return fdBroken(1) || fdBroken(2) }

// fdBroken polls fd for writing without waiting: POLLERR is a pipe with no reader left.
func fdBroken(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(p, 0)
	return err == nil && n > 0 && p[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0
}

// signalCause returns the signal that ended ctx, if one did.
func signalCause(ctx context.Context) (stoppedBy, bool) {
	s, ok := context.Cause(ctx).(stoppedBy)
	return s, ok
}
