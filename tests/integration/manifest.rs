//! Manifest parsing and validation: every bad manifest gets a message that
//! names the field (and, for syntax, the line and column).

use wasipod::PodSpec;

use crate::support::images;

fn error_of(yaml: &str) -> String {
    match PodSpec::from_yaml(yaml, images()) {
        Ok(_) => panic!("accepted a bad manifest:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

fn assert_error(yaml: &str, expected: &[&str]) {
    let message = error_of(yaml);
    for part in expected {
        assert!(
            message.contains(part),
            "expected {part:?} in the error:\n{message}"
        );
    }
}

const OK: &str = "
apiVersion: v1
kind: Pod
metadata: {name: ok}
spec:
  containers:
  - name: app
    image: hello-p1.wasm
";

#[test]
fn a_minimal_pod_gets_kubernetes_defaults() {
    let spec = PodSpec::from_yaml(OK, images()).unwrap();
    assert_eq!(spec.namespace, "default");
    assert_eq!(spec.restart_policy, wasipod::RestartPolicy::Always);
    assert_eq!(spec.termination_grace_period.as_secs(), 30);
    assert_eq!(spec.hostname, "ok");
    assert_eq!(spec.uid.len(), 36, "a generated uid");
    assert_eq!(
        spec.containers[0].resolve("10.88.0.2").unwrap().0,
        ["hello-p1"],
        "argv[0] is the program's name when command is empty"
    );
    assert!(spec.warnings.is_empty());
}

#[test]
fn unknown_fields_are_named_with_their_path() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  restprtPolicy: Never\n  containers: [{name: a, image: hello-p1.wasm}]\n",
        &["spec.restprtPolicy: unknown field", "line 5"],
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    volumeMount: []\n",
        &["spec.containers[0].volumeMount: unknown field"],
    );
}

#[test]
fn yaml_syntax_errors_give_line_and_column() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\nspec: {}\n",
        &["<inline>:", "YAML syntax error"],
    );
    let m = error_of(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n   image: b\n",
    );
    assert!(m.contains(":7:"), "line 7 in {m}");
}

#[test]
fn wrong_types_name_the_field() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: nope\n",
        &["spec.containers", "invalid type"],
    );
}

#[test]
fn duplicate_container_names() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  initContainers: [{name: web, image: hello-p1.wasm}]\n  containers:\n  - {name: api, image: hello-p1.wasm}\n  - {name: web, image: hello-p1.wasm}\n",
        &["spec.containers[1].name: Duplicate value: \"web\""],
    );
}

#[test]
fn mounts_must_name_a_volume() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    volumeMounts: [{name: data, mountPath: /data}]\n",
        &["spec.containers[0].volumeMounts[0].name: Not found: \"data\""],
    );
}

#[test]
fn names_follow_rfc_1123() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  volumes: [{name: Data, emptyDir: {}}]\n  containers: [{name: a, image: hello-p1.wasm}]\n",
        &["spec.volumes[0].name: Invalid value: \"Data\": a lowercase RFC 1123 label"],
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec:\n  containers: [{name: a, image: hello-p1.wasm}]\n",
        &["metadata.name: Invalid value: \"Bad_Name\""],
    );
}

#[test]
fn images_must_exist() {
    let m = error_of(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - {name: a, image: hello-p1.wasm}\n  - {name: b, image: missing.wasm}\n",
    );
    assert!(
        m.contains("spec.containers[1].image: file not found: "),
        "{m}"
    );
    assert!(m.contains("missing.wasm"), "{m}");
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: [{name: a, image: \"docker.io/library/nginx\"}]\n",
        &["spec.containers[0].image: file not found"],
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: [{name: a, image: \"oci://registry/x\"}]\n",
        &["spec.containers[0].image: Unsupported value"],
    );
}

#[test]
fn linux_only_powers_are_refused_with_a_reason() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  hostNetwork: true\n  containers: [{name: a, image: hello-p1.wasm}]\n",
        &["spec.hostNetwork: Forbidden: a wasm pod has no host network namespace"],
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    securityContext: {privileged: true}\n",
        &[
            "spec.containers[0].securityContext.privileged: Forbidden: a wasm guest cannot be privileged",
        ],
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    securityContext: {capabilities: {add: [NET_ADMIN]}}\n",
        &[
            "spec.containers[0].securityContext.capabilities.add: Forbidden: Linux capabilities have no meaning",
        ],
    );
    // What a hardened manifest says is already true of a guest: accepted.
    PodSpec::from_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    securityContext: {capabilities: {drop: [ALL]}, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}\n",
        images(),
    )
    .unwrap();
}

#[test]
fn quantities_and_enums_are_checked() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    resources: {limits: {memory: 12XB}}\n",
        &[
            "spec.containers[0].resources.limits[memory]: Invalid value: \"12XB\": quantities must match",
        ],
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  restartPolicy: Sometimes\n  containers: [{name: a, image: hello-p1.wasm}]\n",
        &[
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        ],
    );
    let spec = PodSpec::from_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    resources: {limits: {memory: 0.5Gi}}\n",
        images(),
    )
    .unwrap();
    assert_eq!(spec.containers[0].memory_limit, Some(512 << 20));
}

#[test]
fn a_pod_needs_containers_and_every_problem_is_listed() {
    let m = error_of("apiVersion: v1\nkind: Pod\nmetadata: {}\nspec:\n  volumes: [{name: v}]\n");
    assert!(m.contains("metadata.name: Required value"), "{m}");
    assert!(m.contains("spec.containers: Required value"), "{m}");
    assert!(
        m.contains("spec.volumes[0]: Required value: must specify a volume type"),
        "{m}"
    );
}

#[test]
fn kinds_and_references_are_checked() {
    assert_error(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
        &["apiVersion: Unsupported value: \"apps/v1\""],
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  volumes: [{name: c, configMap: {name: settings}}]\n  containers: [{name: a, image: hello-p1.wasm}]\n",
        &["spec.volumes[0].configMap.name: Not found: \"settings\""],
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    env: [{name: IP, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]\n",
        &[
            "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.nodeName\"",
        ],
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  volumes: [{name: p, persistentVolumeClaim: {claimName: c}}]\n  containers: [{name: a, image: hello-p1.wasm}]\n",
        &["spec.volumes[0].persistentVolumeClaim: Forbidden: this volume type needs a cluster"],
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  volumes: [{name: d, emptyDir: {}}]\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    volumeMounts: [{name: d, mountPath: /d, subPath: ../../etc}]\n",
        &[
            "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"../../etc\": must be a relative path without '..'",
        ],
    );
}

#[test]
fn cluster_only_fields_are_accepted_with_a_warning() {
    let spec = PodSpec::from_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  nodeName: node-1\n  dnsPolicy: ClusterFirst\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    imagePullPolicy: IfNotPresent\n",
        images(),
    )
    .unwrap();
    let w = spec.warnings.join("\n");
    for field in [
        "spec.nodeName",
        "spec.dnsPolicy",
        "spec.containers[0].imagePullPolicy",
    ] {
        assert!(
            w.contains(&format!("{field}: ignored")),
            "no warning for {field}:\n{w}"
        );
    }
}

/// The QoS classes of the Kubernetes documentation's own examples
/// ("Configure Quality of Service for Pods": qos-demo … qos-demo-4), and
/// requests validated and defaulted as the API server does.
#[test]
fn qos_classes_of_the_kubernetes_examples_and_requests_checked() {
    let qos = |containers: &str| {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: qos-demo}}\nspec:\n  containers:\n{containers}"
        );
        let spec = PodSpec::from_yaml(&yaml, images()).unwrap();
        assert!(
            !spec.warnings.iter().any(|w| w.contains("requests")),
            "{:?}",
            spec.warnings
        );
        spec.qos_class.as_str()
    };
    assert_eq!(
        qos(
            "  - name: qos-demo-ctr\n    image: hello-p1.wasm\n    resources:\n      limits: {memory: 200Mi, cpu: 700m}\n      requests: {memory: 200Mi, cpu: 700m}\n"
        ),
        "Guaranteed"
    );
    assert_eq!(
        qos(
            "  - name: qos-demo-ctr\n    image: hello-p1.wasm\n    resources: {limits: {memory: 200Mi, cpu: 700m}}\n"
        ),
        "Guaranteed",
        "requests default to the limits"
    );
    assert_eq!(
        qos(
            "  - name: qos-demo-2-ctr\n    image: hello-p1.wasm\n    resources:\n      limits: {memory: 200Mi}\n      requests: {memory: 100Mi}\n"
        ),
        "Burstable"
    );
    assert_eq!(
        qos("  - name: qos-demo-3-ctr\n    image: hello-p1.wasm\n"),
        "BestEffort"
    );
    assert_eq!(
        qos(
            "  - name: qos-demo-4-ctr-1\n    image: hello-p1.wasm\n    resources: {requests: {memory: 200Mi}}\n  - name: qos-demo-4-ctr-2\n    image: hello-p1.wasm\n"
        ),
        "Burstable"
    );
    let spec = PodSpec::from_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    resources: {limits: {cpu: 500m, memory: 64Mi}, requests: {cpu: 250m}}\n",
        images(),
    )
    .unwrap();
    let r = spec.containers[0].resources;
    assert_eq!(
        (
            r.requests.cpu_millis,
            r.requests.memory,
            r.limits.cpu_millis
        ),
        (Some(250), Some(64 << 20), Some(500))
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    resources: {limits: {cpu: 500m}, requests: {cpu: '1'}}\n",
        &[
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
        ],
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    image: hello-p1.wasm\n    resources: {requests: {gpu: '1'}}\n",
        &["spec.containers[0].resources.requests[gpu]: Unsupported value: \"gpu\""],
    );
}
