package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

func init() { subcommands = append(subcommands, newSimCmd) }

func newSimCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "vpcsim: an emulated VPC (EC2 Query API + IMDSv2) that AWS clients talk to",
		Long: `vpcsim emulates the parts of EC2 that pod networking relies on: VPCs, subnets, instances,
ENIs, secondary IPs and /28 prefixes, with per-type limits, EC2's error codes, slow attaches,
throttling and injected failures. The aws CLI, boto3 and aws-sdk-go-v2 talk to it unchanged.`,
	}
	cmd.AddCommand(newSimServeCmd())
	return cmd
}

type simServeFlags struct {
	listen, state, imdsListen, types, region string
	latency, throttle, fail, deny            string
	accessKeyID, secretAccessKey, credsFile  string
	role, exhaustion                         string
	roleTTL                                  time.Duration
	hopLimit                                 int
	seed                                     int64
	verbose                                  bool
}

func newSimServeCmd() *cobra.Command {
	f := &simServeFlags{}
	cmd := &cobra.Command{
		Use:   "serve --listen ADDR --state DIR [flags]",
		Short: "Serve the EC2 API (and IMDS) until interrupted",
		Long: `Serve the EC2 Query API (version 2016-11-15) on --listen, keeping state in --state so that
a restart keeps every VPC, subnet, instance, ENI and address.

Every EC2 call must be SigV4-signed, as on EC2, with a credential vpcsim issued: the operator
credential (--access-key-id and --secret-access-key, else the one kept in --state, else a new
random one), written as an AWS shared credentials file to --credentials-file (default
DIR/credentials with --state), or an instance's role credentials from its IMDS
(iam/security-credentials/ROLE), which may call what AmazonEKS_CNI_Policy allows.

IMDS: every instance gets its own loopback IMDS listener, printed when it launches and
available from GET <endpoint>/vpcsim/imds/<instance-id>. --imds-listen adds one shared
listener that answers as the instance whose private IP is the caller's source address (or the
one named by the X-Vpcsim-Instance-Id header).

Knobs take comma-separated ACTION=VALUE lists; ACTION is an EC2 action name or * for all:
  --latency   ACTION=DURATION   delay the reply; for AttachNetworkInterface and
                                DetachNetworkInterface the attachment stays attaching/detaching
  --throttle  ACTION=RATE/BURST token bucket; over it, RequestLimitExceeded (HTTP 503)
  --fail      ACTION=RATE       that share of calls fails with InternalError (HTTP 500)
  --deny      ACTION,...        UnauthorizedOperation (HTTP 403)`,
		Example: `  vpcnet sim serve --listen 127.0.0.1:4600 --state /tmp/vpcsim
  vpcnet sim serve --listen 127.0.0.1:4600 --state /tmp/vpcsim --imds-listen 127.0.0.1:4601 \
      --latency AttachNetworkInterface=2s --throttle '*=20/40' --fail AssignPrivateIpAddresses=0.05

  # then, in another shell:
  export AWS_SHARED_CREDENTIALS_FILE=/tmp/vpcsim/credentials AWS_REGION=us-east-1
  aws --endpoint-url http://127.0.0.1:4600 ec2 create-vpc --cidr-block 10.0.0.0/16`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimServe(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:4600", "EC2 API listen `ADDR`")
	fl.StringVar(&f.state, "state", "", "state `DIR` (created if missing; empty: in memory, lost on exit)")
	fl.StringVar(&f.imdsListen, "imds-listen", "", "shared IMDS listen `ADDR` (identifies callers by source address)")
	fl.StringVar(&f.types, "instance-types", "", "instance-type CSV `FILE` (default $"+catalog.EnvInstanceTypes+", else the built-in set)")
	fl.StringVar(&f.region, "region", "us-east-1", "emulated `REGION`; AZs are REGION+a..f")
	fl.StringVar(&f.latency, "latency", "", "per-action latency: `ACTION=DURATION,...`")
	fl.StringVar(&f.throttle, "throttle", "", "per-action token bucket: `ACTION=RATE/BURST,...`")
	fl.StringVar(&f.fail, "fail", "", "per-action injected failure rate: `ACTION=RATE,...` (0..1)")
	fl.StringVar(&f.deny, "deny", "", "actions answered with UnauthorizedOperation: `ACTION,...`")
	fl.StringVar(&f.accessKeyID, "access-key-id", "", "operator access key `ID` (with --secret-access-key; default: kept in --state, else random)")
	fl.StringVar(&f.secretAccessKey, "secret-access-key", "", "operator secret access `KEY`")
	fl.StringVar(&f.credsFile, "credentials-file", "", "write the operator credential to this AWS shared credentials `FILE` (default DIR/credentials with --state)")
	fl.StringVar(&f.role, "instance-role", vpcsim.DefaultInstanceRole, "IAM role `NAME` every instance has (IMDS iam/security-credentials/NAME)")
	fl.DurationVar(&f.roleTTL, "role-credential-ttl", vpcsim.DefaultRoleCredentialTTL, "how long role credentials stay valid")
	fl.StringVar(&f.exhaustion, "exhaustion-error", vpcsim.ExhaustionCodes, "how a full subnet is answered on create/assign/attach: `STYLE` "+vpcsim.ExhaustionCodes+
		" (InsufficientFreeAddressesInSubnet, InsufficientCidrBlocks) or "+vpcsim.ExhaustionInvalidParameter+" (InvalidParameterValue \""+vpcsim.ExhaustionMessage+"\")")
	fl.IntVar(&f.hopLimit, "imds-hop-limit", vpcsim.DefaultIMDSHopLimit, "IP TTL of IMDSv2 token responses (EC2's HttpPutResponseHopLimit, 1..64)")
	fl.Int64Var(&f.seed, "seed", 0, "seed for IDs, MACs and failure injection")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log every API error")
	return cmd
}

func runSimServe(cmd *cobra.Command, f *simServeFlags) error {
	opts := vpcsim.Options{StateDir: f.state, Region: f.region, Seed: f.seed, InstanceRole: f.role,
		RoleCredentialTTL: f.roleTTL, IMDSHopLimit: f.hopLimit, CredentialsFile: f.credsFile, ExhaustionError: f.exhaustion,
		Operator: vpcsim.Credentials{AccessKeyID: f.accessKeyID, SecretAccessKey: f.secretAccessKey}}
	var err error
	if (f.accessKeyID == "") != (f.secretAccessKey == "") {
		return usagef("--access-key-id and --secret-access-key go together")
	}
	if f.exhaustion != vpcsim.ExhaustionCodes && f.exhaustion != vpcsim.ExhaustionInvalidParameter {
		return usagef("--exhaustion-error: %q is not %s or %s", f.exhaustion, vpcsim.ExhaustionCodes, vpcsim.ExhaustionInvalidParameter)
	}
	if f.hopLimit < 1 || f.hopLimit > 64 {
		return usagef("--imds-hop-limit: %d is not in 1..64", f.hopLimit)
	}
	if f.roleTTL < time.Second {
		return usagef("--role-credential-ttl: %s is shorter than a second", f.roleTTL)
	}
	if f.role == "" || strings.ContainsAny(f.role, "/ \n") {
		return usagef("--instance-role: %q is not a role name", f.role)
	}
	if opts.CredentialsFile == "" && f.state != "" {
		opts.CredentialsFile = filepath.Join(f.state, "credentials")
	}
	if opts.Latency, err = vpcsim.ParseLatency(f.latency); err != nil {
		return usagef("--latency: %v", err)
	}
	if opts.Throttle, err = vpcsim.ParseThrottle(f.throttle); err != nil {
		return usagef("--throttle: %v", err)
	}
	if opts.Fail, err = vpcsim.ParseFail(f.fail); err != nil {
		return usagef("--fail: %v", err)
	}
	if opts.Deny, err = vpcsim.ParseDeny(f.deny); err != nil {
		return usagef("--deny: %v", err)
	}
	if !validRegion(f.region) {
		return usagef("--region: %q is not a region name such as us-east-1", f.region)
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return usagef("--listen: %q is not HOST:PORT", f.listen)
	}
	if f.imdsListen != "" {
		if _, _, err := net.SplitHostPort(f.imdsListen); err != nil {
			return usagef("--imds-listen: %q is not HOST:PORT", f.imdsListen)
		}
	}
	if opts.Catalog, err = catalog.Load(f.types); err != nil {
		return usagef("--instance-types: %v", err)
	}
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))

	out := cmd.OutOrStdout()
	var mu sync.Mutex
	var srv *vpcsim.Server
	announce := func(id string) {
		mu.Lock()
		s := srv
		mu.Unlock()
		if s == nil {
			return
		}
		if url, err := s.IMDSEndpoint(id); err == nil {
			fmt.Fprintf(out, "instance %s IMDS %s\n", id, url)
		}
	}
	opts.Hook = func(e vpcsim.Event) {
		if e.Kind == vpcsim.EventENIAttached && e.DeviceIndex == 0 {
			go announce(e.InstanceID) // the hook runs under the server's lock
		}
	}
	// Signals are caught before anything is served or announced: a SIGTERM that follows the
	// first line a caller reads must still close the state cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := vpcsim.Start(f.listen, opts)
	if err != nil {
		return err
	}
	mu.Lock()
	srv = s
	mu.Unlock()
	defer s.Close()
	where := f.state
	if where == "" {
		where = "memory only"
	}
	fmt.Fprintf(out, "EC2 endpoint %s (region %s, catalog %s, state %s)\n", s.Endpoint(), s.Region(), opts.Catalog.Source(), where)
	if opts.CredentialsFile != "" {
		fmt.Fprintf(out, "operator credentials AWS_SHARED_CREDENTIALS_FILE=%s (access key ID %s)\n", opts.CredentialsFile, s.OperatorCredentials().AccessKeyID)
	} else {
		op := s.OperatorCredentials()
		fmt.Fprintf(out, "operator credentials AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n", op.AccessKeyID, op.SecretAccessKey)
	}
	if f.imdsListen != "" {
		ln, err := net.Listen("tcp", f.imdsListen)
		if err != nil {
			return fmt.Errorf("--imds-listen: %w", err)
		}
		hs := &http.Server{Handler: s.IMDSHandler(s.IdentifyBySourceOrHeader), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
		fmt.Fprintf(out, "IMDS %s (answers as the instance with the caller's source address, or header %s)\n", "http://"+ln.Addr().String(), vpcsim.InstanceHeader)
	}
	fmt.Fprintf(out, "per-instance IMDS: GET %s/vpcsim/imds/INSTANCE-ID\n", s.Endpoint())
	for _, id := range s.RunningInstances() {
		announce(id)
	}
	<-ctx.Done()
	fmt.Fprintln(cmd.ErrOrStderr(), "vpcsim: shutting down")
	return nil
}

func validRegion(r string) bool {
	parts := strings.Split(r, "-")
	if len(parts) < 3 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
	}
	last := parts[len(parts)-1]
	return last[0] >= '0' && last[0] <= '9'
}
