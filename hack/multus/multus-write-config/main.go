// Command multus-write-config writes the Multus config (00-multus.conf) as the thick Multus daemon
// v4.3.0 writes it at its start with multusConfigFile "auto": the daemon's own config manager reads the
// daemon config given, finds the primary CNI config in its multusAutoconfigDir (or takes its
// multusMasterCNI) and persists the config it generates into its cniConfigDir. Nothing else of the
// daemon runs (no socket, no API server, no watch). The node agent's tests read what it writes.
//
// Usage: multus-write-config DAEMON_CONFIG. Prints the path written.
package main

import (
	"fmt"
	"os"

	"gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/server/config"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "multus-write-config: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: multus-write-config DAEMON_CONFIG")
		os.Exit(2)
	}
	conf, err := config.ParseMultusConfig(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	manager, err := config.NewManager(*conf)
	if err != nil {
		fail("%v", err)
	}
	generated, err := manager.GenerateConfig()
	if err != nil || generated == "" {
		fail("no config generated: %v", err)
	}
	path, err := manager.PersistMultusConfig(generated)
	if err != nil {
		fail("%v", err)
	}
	fmt.Println(path)
}
