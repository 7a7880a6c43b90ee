// Command vpcnetd is the vpcnet node agent: configuration from the environment and flags of the
// same names, then internal/agent.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run returns the exit code: 0, 1 for a failure while running, 2 for a bad configuration.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	values, help, err := gather(args, environ)
	if help {
		usage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vpcnetd: %v\n", err)
		return 2
	}
	cfg, err := parse(values)
	if err != nil {
		fmt.Fprintf(stderr, "vpcnetd: %v\n", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(or(values["VPCNET_LOG_LEVEL"], "info"))); err != nil {
		fmt.Fprintf(stderr, "vpcnetd: VPCNET_LOG_LEVEL: %q is not debug, info, warn or error\n", values["VPCNET_LOG_LEVEL"])
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	st, err := store.Open(filepath.Join(cfg.StateDir, "ipam"))
	if err != nil {
		log.Error("opening the allocation store", "err", err)
		return 1
	}
	defer st.Close()
	reg := agent.NewRegistry()
	cfg.Cloud.Observer = reg.Observer()
	var cl *cloud.Client
	for delay := 200 * time.Millisecond; ; delay = min(2*delay, 10*time.Second) {
		if cl, err = cloud.New(ctx, cfg.Cloud); err == nil {
			break
		}
		log.Warn("cloud client; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return 1
		case <-time.After(delay):
		}
	}
	log.Info("vpcnetd starting", "socket", cfg.Socket, "state", cfg.StateDir, "ec2", or(cfg.Cloud.EC2Endpoint, "AWS"), "hostNetworking", cfg.HostNetworking)
	if err := agent.New(cfg, cl, st, reg, log).Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("vpcnetd stopped", "err", err)
		return 1
	}
	return 0
}

// gather reads the environment, then the flags, which win. A flag is named as its variable
// (--WARM_IP_TARGET=5) or in lower case with dashes (--warm-ip-target=5).
func gather(args, environ []string) (map[string]string, bool, error) {
	values := map[string]string{}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.name] = true
	}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if known[k] {
			values[k] = v
		}
	}
	fs := pflag.NewFlagSet("vpcnetd", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	})
	flags := map[string]*string{}
	for _, s := range settings {
		flags[s.name] = fs.String(s.name, s.def, s.help)
	}
	help := fs.BoolP("help", "h", false, "show the settings")
	if err := fs.Parse(args); err != nil {
		return nil, false, err
	}
	if *help {
		return nil, true, nil
	}
	if fs.NArg() > 0 {
		return nil, false, fmt.Errorf("unexpected argument %q: settings are --NAME=value or environment variables", fs.Arg(0))
	}
	fs.Visit(func(f *pflag.Flag) { values[f.Name] = f.Value.String() })
	return values, false, nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, `vpcnetd: the vpcnet node agent. It keeps a warm pool of VPC addresses on this node's ENIs,
hands them to the vpcnet-cni plugin over a unix socket, and writes the CNI config once it can.

Every setting is an environment variable, or a flag of the same name (--WARM_IP_TARGET=5 or
--warm-ip-target=5); flags win. An invalid value stops vpcnetd with exit code 2.

`)
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(w, "  %s (default %s)\n      %s\n", s.name, def, s.help)
	}
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
