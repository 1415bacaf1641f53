// Command multus-add runs one CNI ADD of a NetworkAttachmentDefinition's config the way Multus does,
// through the real libcni: the differential test uses it so that the plugins receive their config as
// libcni rewrites it (numbers re-encoded through a map, the list's version chosen from cniVersions,
// capability args injected as runtimeConfig), not as a copy of that logic would.
//
// Usage: multus-add NAD-NAME NETNS IFNAME CONTAINER-ID CACHE-DIR < spec.config
//
// CNI_PATH names the plugin directories; CAP_ARGS, when set, is a JSON object of capability args
// (what Multus passes from a pod's selection: ips, mac, deviceID...). Its mac and ips also go into
// CNI_ARGS as MAC= and IP= (the ips joined by ","), whatever the plugins' capabilities: Multus's
// DelegateAdd adds them for every delegate. On success the result is printed; on failure the error,
// with exit status 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func main() {
	if len(os.Args) != 6 {
		fail(errors.New("usage: multus-add NAD-NAME NETNS IFNAME CONTAINER-ID CACHE-DIR < spec.config"))
	}
	nadName, netns, ifname, containerID, cacheDir := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	config, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	config, err = withName(config, nadName)
	if err != nil {
		fail(err)
	}
	rt := &libcni.RuntimeConf{
		ContainerID: containerID,
		NetNS:       netns,
		IfName:      ifname,
		// The CNI_ARGS Multus gives every delegate.
		Args: [][2]string{
			{"IgnoreUnknown", "true"},
			{"K8S_POD_NAMESPACE", "default"},
			{"K8S_POD_NAME", "pod"},
			{"K8S_POD_INFRA_CONTAINER_ID", containerID},
			{"K8S_POD_UID", "00000000-0000-0000-0000-000000000000"},
		},
	}
	if capArgs := os.Getenv("CAP_ARGS"); capArgs != "" {
		if err := json.Unmarshal([]byte(capArgs), &rt.CapabilityArgs); err != nil {
			fail(fmt.Errorf("CAP_ARGS: %w", err))
		}
		var request struct {
			Mac string   `json:"mac"`
			IPs []string `json:"ips"`
		}
		if err := json.Unmarshal([]byte(capArgs), &request); err != nil {
			fail(fmt.Errorf("CAP_ARGS: %w", err))
		}
		if request.Mac != "" {
			rt.Args = append(rt.Args, [2]string{"MAC", request.Mac})
		}
		if request.IPs != nil {
			rt.Args = append(rt.Args, [2]string{"IP", strings.Join(request.IPs, ",")})
		}
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), cacheDir, nil)
	result, err := add(cni, config, rt)
	if err != nil {
		fail(err)
	}
	out, err := json.Marshal(result)
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

// withName gives a config without a name (absent or "") the NAD's name, as Multus does when it reads
// spec.config; any other value, null included, is left for libcni to judge.
func withName(config []byte, name string) ([]byte, error) {
	var raw map[string]interface{}
	if err := json.Unmarshal(config, &raw); err != nil {
		return nil, fmt.Errorf("spec.config: %w", err)
	}
	if value, found := raw["name"]; found && value != "" {
		return config, nil
	}
	raw["name"] = name
	return json.Marshal(raw)
}

// add runs the config as a single plugin when it has a type, else as a list: Multus decides so, after
// decoding the config into libcni's typed structs (which refuse fields of the wrong JSON type).
func add(cni *libcni.CNIConfig, config []byte, rt *libcni.RuntimeConf) (types.Result, error) {
	var single types.PluginConf
	if err := json.Unmarshal(config, &single); err != nil {
		return nil, fmt.Errorf("delegate config: %w", err)
	}
	if single.Type != "" {
		conf, err := libcni.ConfFromBytes(config)
		if err != nil {
			return nil, err
		}
		return cni.AddNetwork(context.Background(), conf, rt)
	}
	var list types.NetConfList
	if err := json.Unmarshal(config, &list); err != nil {
		return nil, fmt.Errorf("delegate conflist: %w", err)
	}
	if len(list.Plugins) == 0 || list.Plugins[0] == nil || list.Plugins[0].Type == "" {
		return nil, errors.New("delegate must have the 'type' or 'plugin' field")
	}
	confList, err := libcni.NetworkConfFromBytes(config)
	if err != nil {
		return nil, err
	}
	return cni.AddNetworkList(context.Background(), confList, rt)
}

func fail(err error) {
	fmt.Println(err)
	os.Exit(1)
}
