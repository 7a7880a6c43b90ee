package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

// newLabK8sCmd groups the Kubernetes lab's own commands: the component build cache.
func newLabK8sCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "k8s",
		Short: "Build and inspect the Kubernetes components the lab cluster runs",
	}
	cmd.AddCommand(newLabK8sBuildCmd(), newLabK8sPathCmd())
	return cmd
}

func newLabK8sBuildCmd() *cobra.Command {
	var (
		only    []string
		logPath string
	)
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build Kubernetes, containerd, runc, etcd and the lab's tools from pinned module versions, once",
		Long: `build compiles every component of the lab cluster with the go command from the Go module
proxy, at the pinned versions (` + versionsLine(cache.Default) + `),
into a cache shared by every lab and by CI on this machine ($` + cache.EnvRoot + `, default ` + cache.DefaultRoot + `).
A component already built for its pinned version is skipped, so only the first run is slow
(about 15-20 min on 2 idle cores); later runs take a second.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c := cache.Open("", cache.Default)
			if _, err := cache.Select(c.Versions, only); err != nil {
				return usageError{err}
			}
			o := cache.BuildOptions{Only: only, Progress: func(s string) { fmt.Fprintln(os.Stderr, "  ·", s) }}
			if logPath != "" {
				f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				if err != nil {
					return usagef("--log: %v", err)
				}
				defer f.Close()
				o.Log = f
			}
			ctx, cancel := labContext()
			defer cancel()
			start := time.Now()
			if err := c.Build(ctx, o); err != nil {
				return err
			}
			fmt.Printf("lab components ready in %s (%s)\n", c.Dir, time.Since(start).Round(time.Second))
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&only, "only", nil, "build only these components (tools, runc, etcd, containerd, kubernetes)")
	cmd.Flags().StringVar(&logPath, "log", "", "append the go command's output to this file")
	return cmd
}

func newLabK8sPathCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "path",
		Short: "Print the build cache directory; exit 1 if a component is not built yet",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c := cache.Open("", cache.Default)
			fmt.Println(c.Dir)
			return c.Check()
		},
	}
}

func versionsLine(v cache.Versions) string {
	return fmt.Sprintf("Kubernetes %s, containerd %s, runc %s, etcd %s", v.Kubernetes, v.Containerd, v.Runc, v.Etcd)
}
