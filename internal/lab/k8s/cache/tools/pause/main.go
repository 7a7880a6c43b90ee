// Command pause is the pod sandbox's process (registry.k8s.io/pause in the lab): it holds the
// pod's namespaces open, reaps the zombies of the pod's shared PID namespace, and exits 0 on
// SIGINT or SIGTERM. It is built static (CGO_ENABLED=0) and packed alone into an image.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (vpcnet lab)")
		return
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
