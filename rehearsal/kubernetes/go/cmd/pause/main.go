// Command pause is the pod sandbox process of the local cluster (the image k8s.local/pause):
// PID 1 of every pod's namespaces. It holds them open, reaps the zombies that become its
// children, and exits on SIGINT or SIGTERM (kubelet stops a sandbox that way). No registry is
// reachable here, so the usual registry.k8s.io/pause image is built from this instead.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking (one SIGCHLD may stand for several).
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
