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

	"github.com/spf13/pflag"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if checkRuntime(os.Getenv) == nil { // a bad value: run below refuses it with its line, exit 2
		tuneMemory()
		tuneProcs()
	}
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run returns the exit code: 0, 1 for a failure while running (another agent holds the node), 2 for
// a bad configuration. The order is the guarantee: every setting is checked before anything is
// touched; then the node lock (one agent per node); then the store; then the socket and the HTTP
// listener; the cloud last, so an unreachable IMDS or EC2 is reported on both listeners.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	values, mode, err := gather(args, environ)
	if mode == modeHelp {
		usage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vpcnetd: %v\n", oneLine(err.Error()))
		return 2
	}
	getenv := envLookup(environ)
	err = checkRuntime(getenv) // memory.go: GOMAXPROCS, GOGC, GOMEMLIMIT as the Go runtime reads them
	var cfg agent.Config
	if err == nil {
		cfg, err = parse(values)
	}
	if err == nil {
		err = checkPaths(cfg)
	}
	var kenv kubeEnv
	if err == nil {
		kenv, err = kubeSettings(getenv) // kube.go
	}
	var source cloud.CredentialSource
	if err == nil {
		source, err = cloud.CheckEnvironment(getenv) // the AWS SDK's variables
	}
	if err != nil {
		fmt.Fprintf(stderr, "vpcnetd: %v\n", err)
		return 2
	}
	if mode == modeCheck {
		return 0
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(or(values["VPCNET_LOG_LEVEL"], "info"))) // checked by parse
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	lock, err := lockNode(cfg.StateDir)
	if err != nil {
		fmt.Fprintf(stderr, "vpcnetd: %v\n", err)
		return 1
	}
	defer lock.Close()
	st, err := store.Open(filepath.Join(cfg.StateDir, "ipam"))
	if err != nil {
		fmt.Fprintf(stderr, "vpcnetd: opening the allocation store: %v\n", err)
		return 1
	}
	defer st.Close()
	switch d := st.Damage(); {
	case d.Lost():
		log.Error("the allocation journal was damaged: the allocations the plugin's records hold are restored from them; quarantined addresses are held until GC",
			"journal", filepath.Join(cfg.StateDir, "ipam"), "damage", d.String())
	case d.Torn > 0:
		log.Warn("dropped a torn last journal record (a crash in the middle of an append, never acknowledged)", "bytes", d.Torn, "kept", d.Evidence)
	}
	reg := agent.NewRegistry()
	cfg.Cloud.Observer = reg.Observer()
	connect := func(ctx context.Context) (cloud.Cloud, error) {
		cl, err := cloud.New(ctx, cfg.Cloud)
		if err != nil {
			return nil, err
		}
		return cl, nil
	}
	cfg.Kube = startKube(ctx, kenv, cfg.PodGCGrace, log)
	log.Info("vpcnetd starting", "pid", os.Getpid(), "socket", cfg.Socket, "state", cfg.StateDir, "ec2", or(cfg.Cloud.EC2Endpoint, "AWS"), "hostNetworking", cfg.HostNetworking, "credentials", source)
	warnBuild(log)
	if err := agent.NewConnecting(cfg, connect, st, reg, log).Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "vpcnetd: %v\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

const (
	modeRun   = ""
	modeHelp  = "help"
	modeCheck = "check-settings"
)

// gather reads the environment, then the flags, which win. A flag is named as its variable
// (--WARM_IP_TARGET=5) or in lower case with dashes (--warm-ip-target=5). mode is modeHelp for
// --help, modeCheck for --check-settings (validate as a start would, then exit; nothing touched).
func gather(args, environ []string) (values map[string]string, mode string, err error) {
	values = map[string]string{}
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
	check := fs.Bool(modeCheck, false, "check the settings and exit")
	if err := fs.Parse(args); err != nil {
		return nil, modeRun, err
	}
	if *help {
		return nil, modeHelp, nil
	}
	if fs.NArg() > 0 {
		return nil, modeRun, fmt.Errorf("unexpected argument %q: settings are --NAME=value or environment variables", fs.Arg(0))
	}
	fs.Visit(func(f *pflag.Flag) {
		if f.Name != fs.Lookup(modeCheck).Name {
			values[f.Name] = f.Value.String()
		}
	})
	if *check {
		mode = modeCheck
	}
	return values, mode, nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, `vpcnetd: the vpcnet node agent. It keeps a warm pool of VPC addresses on this node's ENIs,
hands them to the vpcnet-cni plugin over a unix socket, and writes the CNI config once it can.

Every setting is an environment variable, or a flag of the same name (--WARM_IP_TARGET=5 or
--warm-ip-target=5); flags win. Every setting is checked before anything starts: an invalid value
stops vpcnetd with one line naming it and exit code 2. vpcnetd --check-settings checks the
environment and flags exactly as a start would, prints nothing or that line, exits 0 or 2, and
touches nothing.

`)
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(w, "  %s (default %s)\n      %s\n", s.name, def, s.help)
	}
	fmt.Fprintf(w, "\nAWS credentials: the first source whose variables are set is used, tried in this order (checked at\nstart as the other settings are; the source is logged as credentials=):\n")
	for i, src := range cloud.CredentialSources {
		fmt.Fprintf(w, "  %d. %s\n", i+1, src)
		if src == cloud.SourceInstanceRole {
			fmt.Fprintf(w, "      none of the above set: the instance profile's role from IMDS (AWS_EC2_METADATA_SERVICE_ENDPOINT)\n")
		}
		for _, v := range cloud.Environment {
			if v.Source == src {
				fmt.Fprintf(w, "    %s\n        %s\n", v.Name, v.Help)
			}
		}
	}
	fmt.Fprintf(w, "  for every source:\n")
	for _, v := range cloud.Environment {
		if v.Source == "" {
			fmt.Fprintf(w, "    %s\n        %s\n", v.Name, v.Help)
		}
	}
	fmt.Fprintf(w, "  refused (vpcnetd does not read the AWS shared config and credentials files; set, it stops with exit 2):\n    %s\n",
		strings.Join(cloud.Refused(), ", "))
	fmt.Fprintf(w, "\nKubernetes (NODE_NAME is checked at start; without both NODE_NAME and KUBERNETES_SERVICE_HOST there\nis no Kubernetes side):\n")
	printDocs(w, kubeVariables)
	fmt.Fprintf(w, "\nGo runtime (read by the runtime before vpcnetd starts, checked by vpcnetd as the runtime reads\nthem; vpcnetd's defaults apply where they are unset):\n")
	printDocs(w, runtimeVariables)
}

// envDoc documents an environment variable read outside the settings table (by client-go,
// the Go runtime, or before the table is parsed), for --help.
type envDoc struct{ name, def, help string }

func printDocs(w io.Writer, docs []envDoc) {
	for _, d := range docs {
		fmt.Fprintf(w, "  %s (default %s)\n      %s\n", d.name, d.def, d.help)
	}
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// envLookup is os.Getenv over environ (NAME=value; the last of a name wins, as in exec).
func envLookup(environ []string) func(string) string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}
