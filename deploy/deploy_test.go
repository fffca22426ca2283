// Package deploy holds the tests of the deployment files: the Kubernetes overlays are rendered
// with kustomize and parsed strictly into the Kubernetes API types, the compose file into a small
// struct, and every setting is checked against the flags of the real sfu binary.
package deploy

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var overlays = map[string]struct{ lat, lon string }{
	"eu":  {"52.37", "4.90"},
	"sgp": {"1.35", "103.82"},
	"hcm": {"10.82", "106.63"},
}

// objects is one rendered overlay, parsed.
type objects struct {
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	pdbs         map[string]*policyv1.PodDisruptionBudget
	namespaces   map[string]*corev1.Namespace
}

// strict decodes one object's YAML into v, refusing unknown fields.
func strict(b []byte, v any) error {
	return yaml.UnmarshalStrict(b, v)
}

func render(t *testing.T, overlay string) objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join("k8s", "overlays", overlay))
	if err != nil {
		t.Fatalf("kustomize %s: %v", overlay, err)
	}
	o := objects{
		statefulSets: map[string]*appsv1.StatefulSet{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, namespaces: map[string]*corev1.Namespace{},
	}
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		id := r.GetKind() + "/" + r.GetName()
		var dst any
		switch r.GetApiVersion() + " " + r.GetKind() {
		case "apps/v1 StatefulSet":
			v := &appsv1.StatefulSet{}
			o.statefulSets[r.GetName()], dst = v, v
		case "v1 Service":
			v := &corev1.Service{}
			o.services[r.GetName()], dst = v, v
		case "v1 ConfigMap":
			v := &corev1.ConfigMap{}
			o.configMaps[r.GetName()], dst = v, v
		case "v1 Secret":
			v := &corev1.Secret{}
			o.secrets[r.GetName()], dst = v, v
		case "policy/v1 PodDisruptionBudget":
			v := &policyv1.PodDisruptionBudget{}
			o.pdbs[r.GetName()], dst = v, v
		case "v1 Namespace":
			v := &corev1.Namespace{}
			o.namespaces[r.GetName()], dst = v, v
		default:
			t.Fatalf("%s: %s %s has no check in this test", overlay, r.GetApiVersion(), id)
		}
		if err := strict(b, dst); err != nil {
			t.Fatalf("%s: %s does not parse strictly: %v\n%s", overlay, id, err, b)
		}
	}
	return o
}

// sfuFlags runs `sfu --help` and returns its flags and environment variables.
func sfuFlags(t *testing.T) (flags, env map[string]bool) {
	t.Helper()
	cmd := exec.Command("go", "run", "../cmd/sfu", "--help")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sfu --help: %v\n%s", err, out)
	}
	flags, env = map[string]bool{}, map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`).FindAllSubmatch(out, -1) {
		flags[string(m[1])] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:env )?(CASCADE_[A-Z0-9_]+)`).FindAllSubmatch(out, -1) {
		env[string(m[1])] = true
	}
	if len(flags) < 20 || !flags["udp-port"] || !env["CASCADE_UDP_PORT"] || !env["CASCADE_API_SECRET"] {
		t.Fatalf("could not read the flags from sfu --help (%d flags, %d env):\n%s", len(flags), len(env), out)
	}
	return flags, env
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// containerPort finds the container port a Service or probe names (by name or number).
func containerPort(c corev1.Container, p intstr.IntOrString, proto corev1.Protocol) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if cp.Protocol == "" {
			cp.Protocol = corev1.ProtocolTCP
		}
		if cp.Protocol != proto {
			continue
		}
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

func TestOverlaysRenderAndCrossReference(t *testing.T) {
	flags, envVars := sfuFlags(t)
	for name, want := range overlays {
		t.Run(name, func(t *testing.T) {
			o := render(t, name)
			sts := o.statefulSets["cascade"]
			if sts == nil {
				t.Fatalf("no StatefulSet cascade; have %v", keys(o.statefulSets))
			}
			checkSFU(t, o, sts, flags, envVars, name, want.lat, want.lon)
			for _, s := range o.statefulSets {
				checkPodSecurity(t, s)
				checkServiceName(t, o, s)
			}
			checkServices(t, o)
			if len(o.pdbs) == 0 {
				t.Fatal("no PodDisruptionBudget")
			}
			for n, pdb := range o.pdbs {
				if !matches(pdb.Spec.Selector.MatchLabels, sts.Spec.Template.Labels) {
					t.Errorf("PDB %s selects %v, not the sfu pods %v", n, pdb.Spec.Selector.MatchLabels, sts.Spec.Template.Labels)
				}
				if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
					t.Errorf("PDB %s sets neither maxUnavailable nor minAvailable", n)
				}
			}
			for _, ns := range o.namespaces {
				for _, s := range o.statefulSets {
					if s.Namespace != ns.Name {
						t.Errorf("StatefulSet %s in namespace %q, not %q", s.Name, s.Namespace, ns.Name)
					}
				}
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func checkSFU(t *testing.T, o objects, sts *appsv1.StatefulSet, flags, envVars map[string]bool, region, lat, lon string) {
	t.Helper()
	spec := sts.Spec.Template.Spec
	if !matches(sts.Spec.Selector.MatchLabels, sts.Spec.Template.Labels) {
		t.Errorf("StatefulSet selector %v does not match its pod labels %v", sts.Spec.Selector.MatchLabels, sts.Spec.Template.Labels)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers in the sfu pod, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]

	// Environment: every CASCADE_* variable is one the binary reads; the ConfigMap and Secret
	// exist; region, lat and lon are this overlay's.
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm := o.configMaps[from.ConfigMapRef.Name]
			if cm == nil {
				t.Fatalf("envFrom ConfigMap %q does not exist; have %v", from.ConfigMapRef.Name, keys(o.configMaps))
			}
			for k, v := range cm.Data {
				env[k] = v
			}
		case from.SecretRef != nil:
			s := o.secrets[from.SecretRef.Name]
			if s == nil {
				t.Fatalf("envFrom Secret %q does not exist; have %v", from.SecretRef.Name, keys(o.secrets))
			}
			for k, v := range s.Data {
				env[k] = string(v)
			}
			for k, v := range s.StringData {
				env[k] = v
			}
		}
	}
	for _, e := range c.Env {
		if f := e.ValueFrom; f != nil {
			switch {
			case f.ConfigMapKeyRef != nil:
				cm := o.configMaps[f.ConfigMapKeyRef.Name]
				if cm == nil || cm.Data[f.ConfigMapKeyRef.Key] == "" {
					t.Errorf("env %s: ConfigMap %s has no key %s", e.Name, f.ConfigMapKeyRef.Name, f.ConfigMapKeyRef.Key)
				}
			case f.SecretKeyRef != nil:
				if s := o.secrets[f.SecretKeyRef.Name]; s == nil || s.Data[f.SecretKeyRef.Key] == nil {
					t.Errorf("env %s: Secret %s has no key %s", e.Name, f.SecretKeyRef.Name, f.SecretKeyRef.Key)
				}
			case f.FieldRef != nil:
				if !slices.Contains([]string{"metadata.name", "metadata.namespace", "status.podIP", "status.hostIP", "spec.nodeName"}, f.FieldRef.FieldPath) {
					t.Errorf("env %s: unexpected fieldRef %s", e.Name, f.FieldRef.FieldPath)
				}
			}
			env[e.Name] = "<" + e.Name + ">"
			continue
		}
		// $(VAR) must refer to a variable defined before (envFrom, or env above).
		for _, m := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(e.Value, -1) {
			if _, ok := env[m[1]]; !ok {
				t.Errorf("env %s refers to $(%s), which is not defined before it", e.Name, m[1])
			}
		}
		env[e.Name] = e.Value
	}
	for k := range env {
		if strings.HasPrefix(k, "CASCADE_") && !envVars[k] {
			t.Errorf("environment variable %s is not read by sfu (see sfu --help)", k)
		}
	}
	for k, v := range map[string]string{"CASCADE_REGION": region, "CASCADE_LAT": lat, "CASCADE_LON": lon} {
		if env[k] != v {
			t.Errorf("%s = %q, want %q for overlay %s", k, env[k], v, region)
		}
	}
	for _, k := range []string{"CASCADE_API_KEY", "CASCADE_API_SECRET", "CASCADE_NODE_ID", "CASCADE_PUBLIC_IP", "CASCADE_REDIS", "CASCADE_JOIN", "CASCADE_HTTP", "CASCADE_UDP_PORT"} {
		if env[k] == "" {
			t.Errorf("%s is not set", k)
		}
	}
	if sel := spec.NodeSelector["cascade.io/media"]; sel != region {
		t.Errorf("nodeSelector cascade.io/media = %q, want %q", sel, region)
	}
	if sts.Spec.Template.Labels["cascade.io/region"] != region {
		t.Errorf("pod label cascade.io/region = %q, want %q", sts.Spec.Template.Labels["cascade.io/region"], region)
	}

	// Arguments: every --flag is one of sfu's.
	for _, a := range append(slices.Clone(c.Command[min(len(c.Command), 1):]), c.Args...) {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !flags[name] {
				t.Errorf("argument %s is not a flag of sfu", a)
			}
		}
	}

	// Ports: the HTTP and UDP media ports match the configuration; the media port is a
	// hostPort (reachable on the Kubernetes node's address, advertised as CASCADE_PUBLIC_IP).
	httpPort, ok := containerPort(c, intstr.FromString("http"), corev1.ProtocolTCP)
	if !ok || !strings.HasSuffix(env["CASCADE_HTTP"], fmt.Sprintf(":%d", httpPort.ContainerPort)) {
		t.Errorf("http container port %d vs CASCADE_HTTP %q", httpPort.ContainerPort, env["CASCADE_HTTP"])
	}
	media, ok := containerPort(c, intstr.FromString("media"), corev1.ProtocolUDP)
	if !ok || fmt.Sprint(media.ContainerPort) != env["CASCADE_UDP_PORT"] || media.HostPort != media.ContainerPort {
		t.Errorf("media port %+v vs CASCADE_UDP_PORT %q: want a UDP hostPort equal to the container port", media, env["CASCADE_UDP_PORT"])
	}
	for _, e := range c.Env {
		if e.Name == "CASCADE_PUBLIC_IP" && (e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "status.hostIP") {
			t.Errorf("CASCADE_PUBLIC_IP is not the node's address (status.hostIP)")
		}
	}

	// Probes: readiness on /healthz (503 while draining), liveness on /livez (200 while
	// draining), both on the HTTP container port.
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/healthz"}, {"liveness", c.LivenessProbe, "/livez"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe on %s, want %s", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if cp, ok := containerPort(c, p.probe.HTTPGet.Port, corev1.ProtocolTCP); !ok || cp.ContainerPort != httpPort.ContainerPort {
			t.Errorf("%s probe port %v is not the HTTP container port", p.name, p.probe.HTTPGet.Port.String())
		}
	}

	// Drain: SIGTERM drains for CASCADE_DRAIN_TIMEOUT, then shuts down within
	// CASCADE_SHUTDOWN_TIMEOUT; the grace period must cover both.
	drain, shutdown := seconds(t, env["CASCADE_DRAIN_TIMEOUT"]), seconds(t, env["CASCADE_SHUTDOWN_TIMEOUT"])
	// The preStop hook drains the node through its own admin API with the image's relayctl.
	if l := c.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Exec == nil ||
		strings.Join(l.PreStop.Exec.Command, " ") != "/usr/local/bin/relayctl --server http://127.0.0.1:"+strconv.Itoa(int(httpPort.ContainerPort))+" drain self" {
		t.Errorf("preStop must run relayctl drain self against the pod's HTTP port: %+v", c.Lifecycle)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= drain+shutdown {
		t.Errorf("terminationGracePeriodSeconds %v does not exceed drain %ds + shutdown %ds", g, drain, shutdown)
	}

	// Resources from the benchmarks: requests and limits for CPU and memory.
	for _, rl := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
		if rl.Cpu().IsZero() || rl.Memory().IsZero() {
			t.Errorf("sfu resources incomplete: %+v", c.Resources)
		}
	}
	if c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()) < 0 {
		t.Error("memory limit below the request")
	}
}

func seconds(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscanf(s, "%ds", &n); err != nil {
		t.Fatalf("duration %q: want whole seconds like 300s", s)
	}
	return n
}

func checkPodSecurity(t *testing.T, s *appsv1.StatefulSet) {
	t.Helper()
	ps := s.Spec.Template.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod security context not non-root with RuntimeDefault seccomp: %+v", s.Name, ps)
	}
	if s.Spec.Template.Spec.HostNetwork {
		t.Errorf("%s: hostNetwork", s.Name)
	}
	for _, c := range s.Spec.Template.Spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
			(sc.Privileged != nil && *sc.Privileged) {
			t.Errorf("%s/%s: container security context not locked down: %+v", s.Name, c.Name, sc)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: resources not set: %+v", s.Name, c.Name, c.Resources)
		}
	}
}

func checkServiceName(t *testing.T, o objects, s *appsv1.StatefulSet) {
	t.Helper()
	svc := o.services[s.Spec.ServiceName]
	if svc == nil {
		t.Errorf("StatefulSet %s: serviceName %q does not exist", s.Name, s.Spec.ServiceName)
		return
	}
	if !matches(svc.Spec.Selector, s.Spec.Template.Labels) {
		t.Errorf("StatefulSet %s: its Service %s selects %v, not its pods", s.Name, svc.Name, svc.Spec.Selector)
	}
	if s.Name == "cascade" {
		if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
			t.Errorf("sfu governing Service %s must be headless and publish not-ready pods (for gossip joins)", svc.Name)
		}
	}
}

// checkServices: every Service selects the pods of a StatefulSet, and each port's targetPort is
// a container port of those pods with the same protocol; CASCADE_JOIN names the headless one.
func checkServices(t *testing.T, o objects) {
	t.Helper()
	for _, svc := range o.services {
		var pods *appsv1.StatefulSet
		for _, s := range o.statefulSets {
			if matches(svc.Spec.Selector, s.Spec.Template.Labels) {
				pods = s
			}
		}
		if pods == nil {
			t.Errorf("Service %s selects no pods (%v)", svc.Name, svc.Spec.Selector)
			continue
		}
		for _, p := range svc.Spec.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			found := false
			for _, c := range pods.Spec.Template.Spec.Containers {
				if _, ok := containerPort(c, target, proto); ok {
					found = true
				}
			}
			if !found {
				t.Errorf("Service %s port %s targets %s/%s, which no container of %s exposes", svc.Name, p.Name, target.String(), proto, pods.Name)
			}
		}
	}
	sts := o.statefulSets["cascade"]
	cm := ""
	for _, f := range sts.Spec.Template.Spec.Containers[0].EnvFrom {
		if f.ConfigMapRef != nil {
			cm = f.ConfigMapRef.Name
		}
	}
	join := o.configMaps[cm].Data["CASCADE_JOIN"]
	host, port, _ := strings.Cut(join, ":")
	svc := o.services[host]
	if svc == nil || svc.Name != sts.Spec.ServiceName {
		t.Errorf("CASCADE_JOIN %q does not name the headless Service %s", join, sts.Spec.ServiceName)
	} else if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return fmt.Sprint(p.Port) == port }) {
		t.Errorf("CASCADE_JOIN port %s is not a port of Service %s", port, svc.Name)
	}
	if redis := o.configMaps[cm].Data["CASCADE_REDIS"]; redis != "" {
		m := regexp.MustCompile(`^redis://([a-z0-9-]+):(\d+)/`).FindStringSubmatch(redis)
		if m == nil || o.services[m[1]] == nil || !slices.ContainsFunc(o.services[m[1]].Spec.Ports, func(p corev1.ServicePort) bool { return fmt.Sprint(p.Port) == m[2] }) {
			t.Errorf("CASCADE_REDIS %q does not name a Service port of this overlay", redis)
		}
	}
	serfBind := ""
	for i, a := range sts.Spec.Template.Spec.Containers[0].Args {
		if a == "--serf-bind" && i+1 < len(sts.Spec.Template.Spec.Containers[0].Args) {
			serfBind = sts.Spec.Template.Spec.Containers[0].Args[i+1]
		}
	}
	if !strings.HasSuffix(serfBind, ":"+port) {
		t.Errorf("--serf-bind %q does not listen on the gossip port %s", serfBind, port)
	}
}

// compose is the part of the compose file this test reads; unknown keys are refused, so a typo
// in a key fails here instead of being ignored by docker compose.
type compose struct {
	XSFU     map[string]any            `json:"x-sfu"`
	Services map[string]composeService `json:"services"`
}

type composeService struct {
	Build       *struct{ Context, Dockerfile string } `json:"build"`
	Image       string                                `json:"image"`
	NetworkMode string                                `json:"network_mode"`
	Restart     string                                `json:"restart"`
	DependsOn   []string                              `json:"depends_on"`
	ReadOnly    bool                                  `json:"read_only"`
	CapDrop     []string                              `json:"cap_drop"`
	SecurityOpt []string                              `json:"security_opt"`
	StopGrace   string                                `json:"stop_grace_period"`
	Command     []string                              `json:"command"`
	Environment map[string]string                     `json:"environment"`
	Volumes     []string                              `json:"volumes"`
}

func TestComposeFile(t *testing.T) {
	_, envVars := sfuFlags(t)
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, s := range []string{"redis", "sfu-eu", "sfu-sgp", "sfu-hcm", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Fatalf("compose.yaml has no service %s", s)
		}
	}
	prom, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var pc struct {
		Global        map[string]string `json:"global"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			MetricsPath   string `json:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.UnmarshalStrict(prom, &pc); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	var targets []string
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}

	redis := c.Services["redis"]
	redisPort := ""
	for i, a := range redis.Command {
		if a == "--port" && i+1 < len(redis.Command) {
			redisPort = redis.Command[i+1]
		}
	}
	serfAddrs, httpAddrs, udpPorts, ids := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	var sfus []composeService
	for name, s := range c.Services {
		if !strings.HasPrefix(name, "sfu-") {
			continue
		}
		sfus = append(sfus, s)
		if s.Build == nil || s.Build.Dockerfile != "Dockerfile" || s.Build.Context != ".." {
			t.Errorf("%s does not build ../Dockerfile: %+v", name, s.Build)
		}
		if s.NetworkMode != "host" {
			t.Errorf("%s: network_mode %q, want host (media on 127.0.0.1)", name, s.NetworkMode)
		}
		if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("%s: not read-only without capabilities", name)
		}
		env := s.Environment
		for k := range env {
			if !envVars[k] {
				t.Errorf("%s: %s is not read by sfu", name, k)
			}
		}
		if env["CASCADE_REGION"] != strings.TrimPrefix(name, "sfu-") || env["CASCADE_NODE_ID"] == "" || ids[env["CASCADE_NODE_ID"]] {
			t.Errorf("%s: region %q, node id %q (must be unique)", name, env["CASCADE_REGION"], env["CASCADE_NODE_ID"])
		}
		ids[env["CASCADE_NODE_ID"]] = true
		if env["CASCADE_REDIS"] != "redis://127.0.0.1:"+redisPort+"/0" {
			t.Errorf("%s: CASCADE_REDIS %q is not the compose Redis (port %s)", name, env["CASCADE_REDIS"], redisPort)
		}
		if env["CASCADE_PUBLIC_URL"] != "http://"+env["CASCADE_HTTP"] {
			t.Errorf("%s: public URL %q is not its HTTP address %q", name, env["CASCADE_PUBLIC_URL"], env["CASCADE_HTTP"])
		}
		if !slices.Contains(targets, env["CASCADE_HTTP"]) {
			t.Errorf("%s: Prometheus does not scrape %s (targets %v)", name, env["CASCADE_HTTP"], targets)
		}
		if httpAddrs[env["CASCADE_HTTP"]] || udpPorts[env["CASCADE_UDP_PORT"]] || serfAddrs[env["CASCADE_SERF_BIND"]] {
			t.Errorf("%s: a port is shared with another node", name)
		}
		httpAddrs[env["CASCADE_HTTP"]], udpPorts[env["CASCADE_UDP_PORT"]], serfAddrs[env["CASCADE_SERF_BIND"]] = true, true, true
	}
	if len(sfus) != 3 || len(targets) != 3 {
		t.Fatalf("%d sfu services, %d scrape targets; want 3 and 3", len(sfus), len(targets))
	}
	// Every node joins the two others.
	for _, s := range sfus {
		joins := strings.Split(s.Environment["CASCADE_JOIN"], ",")
		for a := range serfAddrs {
			if a != s.Environment["CASCADE_SERF_BIND"] && !slices.Contains(joins, a) {
				t.Errorf("%s does not join %s", s.Environment["CASCADE_NODE_ID"], a)
			}
		}
	}
	// The files Grafana and Prometheus mount exist.
	for _, name := range []string{"prometheus", "grafana"} {
		for _, v := range c.Services[name].Volumes {
			src, _, _ := strings.Cut(v, ":")
			if _, err := os.Stat(src); err != nil {
				t.Errorf("%s mounts %s: %v", name, src, err)
			}
		}
	}
	var ds struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, Access, URL string
			IsDefault                    bool `json:"isDefault"`
		} `json:"datasources"`
	}
	b, err = os.ReadFile("grafana/provisioning/datasources/prometheus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &ds); err != nil {
		t.Fatal(err)
	}
	promAddr := ""
	for _, a := range c.Services["prometheus"].Command {
		if v, ok := strings.CutPrefix(a, "--web.listen-address="); ok {
			promAddr = v
		}
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://"+promAddr {
		t.Errorf("Grafana's datasource %+v is not the compose Prometheus at %s", ds.Datasources, promAddr)
	}
}

// The Dockerfile builds both binaries as static executables: the same go build, with cgo off,
// must succeed here, and the runtime stage must run them as a non-root user.
func TestDockerfileBuildsStaticBinaries(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{"FROM golang:1.26 AS build", "ENV CGO_ENABLED=0", "./cmd/sfu", "./cmd/relayctl", "USER 65532:65532", `ENTRYPOINT ["/usr/local/bin/sfu"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^FROM `).FindAllString(df, -1)); n != 2 {
		t.Errorf("Dockerfile has %d stages, want 2 (build, runtime)", n)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+string(filepath.Separator), "../cmd/sfu", "../cmd/relayctl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, b)
	}
	for _, pkg := range []string{"../cmd/sfu", "../cmd/relayctl"} {
		out := filepath.Join(dir, filepath.Base(pkg))
		// A static binary has no program interpreter (PT_INTERP) and no dynamic section.
		f, err := elf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked (%v)", pkg, p.Type)
			}
		}
		f.Close()
	}
}
