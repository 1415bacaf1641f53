// Command multus-delegates reads a pod's networks annotation with the real Multus v4.3.0 code and
// prints what Multus makes of it: the selection elements as k8sclient.GetPodNetwork decodes them and,
// given a kubeconfig, for each the delegate config k8sclient.GetNetworkDelegates hands to libcni (a
// selection's "cni-args" merged into args.cni of every plugin) with the requests it passes as runtime
// config. GetNetworkDelegates reads the NADs from the apiserver the kubeconfig names, through the
// client Multus builds from a kubeconfig (k8sclient.GetK8sClient): the NADs must be there. The pod is
// in memory, as Multus reads it from the kubelet's request. The differential tests compare the
// webhook's reading of the annotation, and the plugins' outcome, against this.
//
// Usage: multus-delegates [-kubeconfig PATH] < {"annotation": "...", "namespace": "..."}
//
// The pod is "pod" in "namespace" ("default" if empty). Prints {"networks": [...]}, with a kubeconfig
// {"networks": [...], "delegates": [...]}, or {"error": "...", "stage": "parse" | "delegates"} (a panic
// of Multus's is an error of stage "delegates" that starts with "panic: ").
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/k8sclient"
	"gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/logging"
	"gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/types"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type input struct {
	Annotation string `json:"annotation"`
	Namespace  string `json:"namespace"`
}

type delegate struct {
	Name         string                `json:"name"`
	Config       string                `json:"config"`
	Interface    string                `json:"interface"`
	IPs          []string              `json:"ips"`
	Mac          string                `json:"mac"`
	PortMappings []*types.PortMapEntry `json:"portMappings"`
	Bandwidth    *types.BandwidthEntry `json:"bandwidth"`
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "the apiserver to read the NADs from; without it, only parse")
	flag.Parse()
	logging.SetLogLevel("panic")
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		usage(err)
	}
	if in.Namespace == "" {
		in.Namespace = "default"
	}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod", Namespace: in.Namespace,
		UID: "00000000-0000-0000-0000-000000000000", Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": in.Annotation}}}
	networks, err := k8sclient.GetPodNetwork(pod)
	if err != nil {
		fail("parse", err)
	}
	out := map[string]interface{}{"networks": networks}
	if *kubeconfig != "" {
		client, err := k8sclient.GetK8sClient(*kubeconfig, nil)
		if err != nil {
			usage(err)
		}
		conf := &types.NetConf{ConfDir: os.TempDir()}
		delegates, err := networkDelegates(client, pod, networks, conf)
		client.EventBroadcaster.Shutdown()
		if err != nil {
			fail("delegates", err)
		}
		found := []delegate{}
		for _, d := range delegates {
			found = append(found, delegate{d.Name, string(d.Bytes), d.IfnameRequest, d.IPRequest, d.MacRequest,
				d.PortMappingsRequest, d.BandwidthRequest})
		}
		out["delegates"] = found
	}
	emit(out)
}

// networkDelegates is k8sclient.GetNetworkDelegates, with a panic of Multus's reported as an error
// (stage "delegates", the error starting with "panic: "): the thick daemon's HTTP server survives it but
// the pod's ADD fails, and the thin plugin crashes, so for a pod it is a refusal like any other.
func networkDelegates(client *k8sclient.ClientInfo, pod *v1.Pod, networks []*types.NetworkSelectionElement,
	conf *types.NetConf) (delegates []*types.DelegateNetConf, err error) {
	defer func() {
		if r := recover(); r != nil {
			delegates, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return k8sclient.GetNetworkDelegates(client, pod, networks, conf, nil)
}

// fail reports what Multus refused, as a result (exit status 0): the pod's ADD fails there.
func fail(stage string, err error) {
	emit(map[string]interface{}{"stage": stage, "error": err.Error()})
	os.Exit(0)
}

// usage reports what kept the tool from asking Multus at all (bad input, an unusable kubeconfig):
// exit status 2, nothing on stdout.
func usage(err error) {
	fmt.Fprintln(os.Stderr, "multus-delegates:", err)
	os.Exit(2)
}

func emit(v interface{}) {
	text, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(text))
}
