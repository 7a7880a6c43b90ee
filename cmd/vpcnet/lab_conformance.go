package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/spf13/cobra"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

// errSpecsFailed makes `lab conformance` exit 1 when a spec failed (the summary says which).
var errSpecsFailed = errors.New("conformance: some specs failed")

func newLabConformanceCmd() *cobra.Command {
	var focus, skip, reportDir string
	var timeout time.Duration
	var dns bool
	cmd := &cobra.Command{
		Use:   "conformance",
		Short: "Run Kubernetes' own e2e conformance specs of sig-network against the lab cluster",
		Long: `conformance builds (once, cached) the upstream e2e test binary, agnhost, CoreDNS and k8tools
for the lab's Kubernetes version, imports the images into every node's containerd under the
names the specs expect (nothing is pulled), starts kube-proxy where it is missing, deploys
CoreDNS as the cluster DNS, and runs the selected specs from the lab's router namespace with
one line per finished spec. It prints passed/failed/skipped and the JUnit file's path; the
exit status is 1 when a spec failed.

The default selection is every [Conformance] spec of [sig-network] the lab can host; what is
left out, and why, is --skip's default and docs/conformance.md.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			for _, re := range []string{focus, skip} {
				if _, err := regexp.Compile(re); err != nil {
					return usageError{fmt.Errorf("bad regular expression %q: %v", re, err)}
				}
			}
			if timeout <= 0 {
				return usageError{fmt.Errorf("--timeout must be positive, not %s", timeout)}
			}
			if _, err := clusterKubeconfig(); err != nil {
				return err
			}
			ctx, cancel := labContext()
			defer cancel()
			progress := func(s string) { fmt.Fprintln(os.Stderr, "  ·", s) }
			c, err := labClient()
			if err != nil {
				return err
			}
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if len(st.Nodes) == 0 {
				return fmt.Errorf("lab %s has no node: add some with `vpcnet lab node add --name %s`", labName, labName)
			}
			bc := cache.Open("", cache.Default)
			if err := bc.Build(ctx, cache.BuildOptions{Only: k8s.ConformanceComponents(dns), Progress: progress}); err != nil {
				return err
			}
			imgs, err := k8s.ConformanceImages(bc, dns, progress)
			if err != nil {
				return err
			}
			for _, n := range st.Nodes {
				progress(fmt.Sprintf("node %s: importing %d images", n.Name, len(imgs)))
				if err := k8s.ImportImages(ctx, labName, n.Index, imgs); err != nil {
					return err
				}
			}
			if err := k8s.EnsureKubeProxy(labName, st, progress); err != nil {
				return err
			}
			// Labs started before the control plane's source address was set get it here.
			cfg, err := lab.ReadConfig(lab.PathsFor(labName))
			if err != nil {
				return err
			}
			if err := k8s.RouterSNAT(labName, cfg.VPCCIDR, cfg.Subnets[0].Addr().Next()); err != nil {
				return err
			}
			if dns {
				progress(fmt.Sprintf("deploying CoreDNS %s as kube-system/kube-dns at %s", cache.CoreDNSVersion, k8s.DNSServiceIP))
				if err := k8s.DeployCoreDNS(ctx, labName); err != nil {
					return err
				}
			} else {
				progress("no cluster DNS (--dns=false): the DNS specs will fail")
			}
			if reportDir == "" {
				reportDir = filepath.Join(k8s.PathsOf(lab.PathsFor(labName)).Dir, "conformance", time.Now().UTC().Format("20060102T150405Z"))
			}
			progress(fmt.Sprintf("running e2e.test %s: focus %q skip %q", bc.Versions.Kubernetes, focus, skip))
			res, err := k8s.RunE2E(ctx, labName, k8s.E2EOptions{Focus: focus, Skip: skip, ReportDir: reportDir, Timeout: timeout}, progress)
			if err != nil {
				return err
			}
			fmt.Printf("ran %d of %d specs in %s: %d passed, %d failed, %d skipped (%d selected specs skipped themselves, %d not selected)\n",
				res.Ran, res.Total, res.Elapsed.Round(time.Second), res.Passed, res.Failed, res.Skip, res.SkippedAtRun, res.Skip-res.SkippedAtRun)
			for _, f := range res.FailedSpecs {
				fmt.Printf("FAILED: %s\n", f)
			}
			fmt.Printf("JUnit: %s\nlog: %s\n", res.JUnit, res.Log)
			if res.Failed > 0 || len(res.FailedSpecs) > 0 {
				return errSpecsFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&focus, "focus", k8s.DefaultFocus, "ginkgo regular expression: run the specs whose text matches")
	cmd.Flags().StringVar(&skip, "skip", k8s.DefaultSkip(), "ginkgo regular expression: leave out the specs whose text matches")
	cmd.Flags().StringVar(&reportDir, "report-dir", "", "where e2e.log and junit_01.xml go (default <lab>/k8s/conformance/<time>)")
	cmd.Flags().BoolVar(&dns, "dns", true, "build and deploy CoreDNS as the cluster DNS (false: faster to a first run when no DNS spec is selected)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Hour, "ginkgo's suite timeout")
	return cmd
}
