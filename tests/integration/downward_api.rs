//! The downward API: pod fields and container resources in `downwardAPI`
//! and `projected` volumes and in the environment, as the kubelet writes
//! them.

use crate::support::*;

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: dapi
  labels: {app: web, tier: front}
  annotations: {build: "42"}
spec:
  restartPolicy: Never
  volumes:
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: build, fieldRef: {fieldPath: "metadata.annotations['build']"}}
      - {path: sub/cpu_limit, resourceFieldRef: {containerName: c, resource: limits.cpu, divisor: 1m}}
      - {path: mem_request, resourceFieldRef: {containerName: c, resource: requests.memory, divisor: 1Mi}}
      - {path: other_cpu_request, resourceFieldRef: {containerName: other, resource: requests.cpu, divisor: 1m}}
  - name: all
    projected:
      sources:
      - configMap: {name: settings, items: [{key: mode, path: mode}]}
      - secret: {name: creds}
      - downwardAPI: {items: [{path: ns, fieldRef: {fieldPath: metadata.namespace}}]}
  containers:
  - name: c
    image: IMAGE
    args: [sh, "cat /info/labels; echo; cat /info/name; echo; cat /info/build; echo; cat /info/sub/cpu_limit; echo; cat /info/mem_request; echo; cat /info/other_cpu_request; echo; ls /all; cat /all/ns; echo; cat /all/mode; echo; cat /all/password; echo; try-write /info/name; env"]
    env:
    - {name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
    - {name: CPU_M, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: OTHER_MEM, valueFrom: {resourceFieldRef: {containerName: other, resource: requests.memory}}}
    resources: {limits: {cpu: 250m, memory: 64Mi}, requests: {memory: 32Mi}}
    volumeMounts: [{name: info, mountPath: /info}, {name: all, mountPath: /all}]
  - name: other
    image: IMAGE
    args: [echo, other]
    resources: {requests: {cpu: 100m, memory: 1Ki}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast, unused: x}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2}
"#;

#[tokio::test]
async fn downward_api_and_projected_volumes_and_env_hold_the_pod_and_its_resources() {
    for image in ["toolbox-p1.wasm", "toolbox-p2.wasm"] {
        let f = Fixture::new();
        let (w, status) = f.run(&POD.replace("IMAGE", image)).await;
        assert_eq!(status.phase, wasipod::PodPhase::Succeeded, "{image}");
        let out = w.log("c");
        let expected = "app=\"web\"\ntier=\"front\"\ndapi\n42\n250\n32\n100\nmode\nns\npassword\ndefault\nfast\nhunter2\nwrite /info/name: error ";
        assert!(out.starts_with(expected), "{image}:\n{out}");
        for var in ["CPU=1\n", "CPU_M=250\n", "MEM=64\n", "OTHER_MEM=1024\n"] {
            assert!(out.contains(var), "{image}: {var}\n{out}");
        }
    }
}

#[tokio::test]
async fn downward_api_fields_are_checked_and_cluster_sources_refused() {
    let bad = |volumes: &str| {
        wasipod::PodSpec::from_yaml(
            &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: x}}\nspec:\n  volumes:\n{volumes}  containers: [{{name: a, image: hello-p1.wasm}}]\n"),
            images(),
        )
        .unwrap_err()
        .to_string()
    };
    let m = bad(
        "  - {name: v, downwardAPI: {items: [{path: a, fieldRef: {fieldPath: spec.nodeName}}]}}\n",
    );
    assert!(m.contains("spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: \"spec.nodeName\""), "{m}");
    let m = bad(
        "  - {name: v, downwardAPI: {items: [{path: a, resourceFieldRef: {resource: limits.cpu}}]}}\n",
    );
    assert!(
        m.contains(
            "spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName: Required value"
        ),
        "{m}"
    );
    let m = bad(
        "  - {name: v, downwardAPI: {items: [{path: a, resourceFieldRef: {containerName: a, resource: limits.cpu, divisor: 3}}]}}\n",
    );
    assert!(
        m.contains(
            "resourceFieldRef.divisor: Unsupported value: \"3\": supported values: \"1m\", \"1\""
        ),
        "{m}"
    );
    let m = bad(
        "  - {name: v, downwardAPI: {items: [{path: ../a, fieldRef: {fieldPath: metadata.name}}]}}\n",
    );
    assert!(
        m.contains("spec.volumes[0].downwardAPI.items[0].path: Invalid value: \"../a\""),
        "{m}"
    );
    let m = bad("  - {name: v, projected: {sources: [{serviceAccountToken: {path: token}}]}}\n");
    assert!(m.contains("spec.volumes[0].projected.sources[0].serviceAccountToken: Forbidden: a service account token is issued by an API server"), "{m}");
    let m = bad("  - {name: v, projected: {sources: [{clusterTrustBundle: {path: b}}]}}\n");
    assert!(
        m.contains("projected.sources[0].clusterTrustBundle: Forbidden"),
        "{m}"
    );
}
