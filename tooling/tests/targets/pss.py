"""A checker for the Kubernetes Pod Security Standards, "restricted" profile (which includes "baseline").

Written from https://kubernetes.io/docs/concepts/security/pod-security-standards/ (policy version
v1.30+): every control of both profiles, for Linux pods. ``violations(pod_spec, annotations)`` returns
one line per violated control naming the control and the field, as Pod Security Admission would
report them; an empty list means the pod is admitted under ``enforce: restricted``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Baseline "Capabilities": what may be added beyond the runtime's defaults.
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
# Baseline "Sysctls": the safe set.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# Restricted "Volume Types": only these.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for index, container in enumerate(spec.get(field) or []):
            yield f"spec.{field}[{index}]", container


def violations(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> list[str]:
    found: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    annotations = annotations or {}
    containers = list(_containers(spec))

    # --- baseline ---
    # HostProcess
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        found.append("HostProcess: spec.securityContext.windowsOptions.hostProcess must be unset or false")
    for where, c in containers:
        if ((c.get("securityContext") or {}).get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"HostProcess: {where}.securityContext.windowsOptions.hostProcess must be unset or false")
    # Host Namespaces
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"Host Namespaces: spec.{field} must be unset or false")
    # Privileged Containers
    for where, c in containers:
        if (c.get("securityContext") or {}).get("privileged"):
            found.append(f"Privileged Containers: {where}.securityContext.privileged must be unset or false")
    # Capabilities (baseline)
    for where, c in containers:
        for cap in ((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []:
            if cap not in BASELINE_CAPABILITIES:
                found.append(f"Capabilities: {where}.securityContext.capabilities.add must not add {cap}")
    # HostPath Volumes
    for index, volume in enumerate(spec.get("volumes") or []):
        if "hostPath" in volume:
            found.append(f"HostPath Volumes: spec.volumes[{index}].hostPath must be unset")
    # Host Ports
    for where, c in containers:
        for index, port in enumerate(c.get("ports") or []):
            if port.get("hostPort"):
                found.append(f"Host Ports: {where}.ports[{index}].hostPort must be unset or 0")
    # AppArmor
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            found.append(f"AppArmor: metadata.annotations[{key!r}] must be runtime/default or localhost/*")
    for where, sc in [("spec.securityContext", pod_sc)] + [
        (f"{w}.securityContext", c.get("securityContext") or {}) for w, c in containers
    ]:
        profile = (sc.get("appArmorProfile") or {}).get("type")
        if profile not in (None, "RuntimeDefault", "Localhost"):
            found.append(f"AppArmor: {where}.appArmorProfile.type must be RuntimeDefault or Localhost")
        # SELinux
        options = sc.get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES:
            found.append(f"SELinux: {where}.seLinuxOptions.type must be one of the container types")
        for field in ("user", "role"):
            if options.get(field):
                found.append(f"SELinux: {where}.seLinuxOptions.{field} must be unset")
        # Seccomp (baseline): never Unconfined
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            found.append(f"Seccomp: {where}.seccompProfile.type must not be Unconfined")
    # /proc Mount Type
    for where, c in containers:
        if (c.get("securityContext") or {}).get("procMount", "Default") != "Default":
            found.append(f"/proc Mount Type: {where}.securityContext.procMount must be Default")
    # Sysctls
    for index, sysctl in enumerate(pod_sc.get("sysctls") or []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"Sysctls: spec.securityContext.sysctls[{index}].name {sysctl.get('name')} is not safe")

    # --- restricted ---
    # Volume Types
    for index, volume in enumerate(spec.get("volumes") or []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"Volume Types: spec.volumes[{index}] uses {sorted(kinds - RESTRICTED_VOLUMES)}")
    # Privilege Escalation: explicitly false in every container
    for where, c in containers:
        if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False:
            found.append(f"Privilege Escalation: {where}.securityContext.allowPrivilegeEscalation must be false")
    # Running as Non-root: pod true (containers may leave it unset) or every container true; never false
    pod_non_root = pod_sc.get("runAsNonRoot")
    for where, c in containers:
        value = (c.get("securityContext") or {}).get("runAsNonRoot")
        if value is False or (value is None and pod_non_root is not True):
            found.append(f"Running as Non-root: {where}.securityContext.runAsNonRoot (or the pod's) must be true")
    if pod_non_root is False:
        found.append("Running as Non-root: spec.securityContext.runAsNonRoot must not be false")
    # Running as Non-root user: runAsUser never 0
    if pod_sc.get("runAsUser") == 0:
        found.append("Running as Non-root user: spec.securityContext.runAsUser must not be 0")
    for where, c in containers:
        if (c.get("securityContext") or {}).get("runAsUser") == 0:
            found.append(f"Running as Non-root user: {where}.securityContext.runAsUser must not be 0")
    # Seccomp (restricted): RuntimeDefault or Localhost on the pod, or on every container
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    for where, c in containers:
        value = ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
        if value not in ("RuntimeDefault", "Localhost") and not (
            value is None and pod_seccomp in ("RuntimeDefault", "Localhost")
        ):
            found.append(
                f"Seccomp: {where}.securityContext.seccompProfile.type (or the pod's) "
                "must be RuntimeDefault or Localhost"
            )
    # Capabilities (restricted): drop ALL, add at most NET_BIND_SERVICE
    for where, c in containers:
        caps = (c.get("securityContext") or {}).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"Capabilities: {where}.securityContext.capabilities.drop must include ALL")
        for cap in caps.get("add") or []:
            if cap != "NET_BIND_SERVICE":
                found.append(f"Capabilities: {where}.securityContext.capabilities.add may only add NET_BIND_SERVICE")
    return found
