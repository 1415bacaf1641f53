// Command multus-delegates reads a pod's networks annotation and the NADs it selects with the real
// Multus v4.3.0 code (k8sclient.GetPodNetwork, then GetNetworkDelegates against a fake API server
// holding the NADs) and prints what Multus makes of them: the selection elements as Multus decoded
// them, and for each the delegate config it hands to libcni (a selection's "cni-args" merged into
// args.cni of every plugin) with the requests it passes as runtime config. The differential tests
// compare the webhook's reading of the annotation, and the plugins' outcome, against this.
//
// Usage: multus-delegates < {"annotation": "...", "nads": [{"namespace": "...", "name": "...", "config": "..."}]}
//
// Prints {"networks": [...], "delegates": [...]} or {"error": "...", "stage": "parse" | "delegates"}.
// The pod is "pod" in namespace "default".
package main

import (
	"encoding/json"
	"fmt"
	"os"

	nettypes "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	netfake "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned/fake"
	"gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/k8sclient"
	"gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/logging"
	"gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/types"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

type input struct {
	Annotation string `json:"annotation"`
	NADs       []struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
		Config    string `json:"config"`
	} `json:"nads"`
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
	logging.SetLogLevel("panic")
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fail("input", err)
	}
	client := &k8sclient.ClientInfo{Client: fake.NewSimpleClientset(), NetClient: netfake.NewSimpleClientset()}
	for _, nad := range in.NADs {
		obj := &nettypes.NetworkAttachmentDefinition{
			ObjectMeta: metav1.ObjectMeta{Namespace: nad.Namespace, Name: nad.Name},
			Spec:       nettypes.NetworkAttachmentDefinitionSpec{Config: nad.Config},
		}
		if _, err := client.AddNetAttachDef(obj); err != nil {
			fail("input", err)
		}
	}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod", Namespace: "default", UID: "00000000-0000-0000-0000-000000000000",
		Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": in.Annotation}}}
	networks, err := k8sclient.GetPodNetwork(pod)
	if err != nil {
		fail("parse", err)
	}
	out := map[string]interface{}{"networks": networks}
	if len(in.NADs) > 0 {
		conf := &types.NetConf{ConfDir: os.TempDir()}
		delegates, err := k8sclient.GetNetworkDelegates(client, pod, networks, conf, nil)
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

// fail reports what Multus refused, as a result (exit status 0): the pod's ADD fails there.
func fail(stage string, err error) {
	emit(map[string]interface{}{"stage": stage, "error": err.Error()})
	os.Exit(0)
}

func emit(v interface{}) {
	text, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(text))
}
