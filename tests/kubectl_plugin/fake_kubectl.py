#!/usr/bin/env python3
"""A stand-in for kubectl, for the kubectl-dpinspect tests: it records each call's arguments (one
JSON list a line in $FAKE_KUBECTL_LOG) and answers the calls the plugin makes from a recorded
`kubectl get nodes,pods,services -A -o json` document ($FAKE_KUBECTL_CLUSTER), the way kubectl
1.32 does: `get -o jsonpath=...` (the subset the plugin uses: paths, [*], range/end, "literals";
missing keys print nothing), `get nodes -o name`, the NotFound messages and exit code 1.

`debug node/N` creates a pod (kept in $FAKE_KUBECTL_STATE) and prints kubectl's message naming
it; `wait` makes it run (exec before that fails, as it does while the image is pulled); `delete`
removes it; `exec POD -- CMD...` runs CMD here, as the container would, with $FAKE_NODE set to
the pod's node and $FAKE_BIN first on PATH (a fake chroot and the fake host's dpinspect live
there). $FAKE_KUBECTL_FAIL makes one kind of call fail:
debug-forbidden, debug-no-profile, wait-timeout, exec-lost.
"""
import json
import os
import re
import sys


def log(argv):
    with open(os.environ["FAKE_KUBECTL_LOG"], "a") as f:
        f.write(json.dumps(argv) + "\n")


def fail(msg, code=1):
    sys.stderr.write(msg + "\n")
    sys.exit(code)


# ---- jsonpath (kubectl's template syntax, the parts the plugin uses) -------------------------


def tokens(template):
    out = []
    pos = 0
    for m in re.finditer(r"\{((?:\"(?:[^\"\\]|\\.)*\"|[^}])*)\}", template):
        if m.start() > pos:
            out.append(("text", template[pos:m.start()]))
        out.append(("action", m.group(1).strip()))
        pos = m.end()
    if pos < len(template):
        out.append(("text", template[pos:]))
    return out


def select(ctx, path):
    if path == "@":
        return [ctx]
    cur = [ctx]
    for name, index in re.findall(r"\.([A-Za-z0-9_-]*)(\[[^\]]*\])?", path):
        nxt = []
        for v in cur:
            if name:
                if isinstance(v, dict) and name in v:
                    nxt.append(v[name])
            else:
                nxt.append(v)
        if index == "[*]":
            nxt = [x for v in nxt if isinstance(v, list) for x in v]
        elif index:
            i = int(index[1:-1])
            nxt = [v[i] for v in nxt if isinstance(v, list) and -len(v) <= i < len(v)]
        cur = nxt
    return cur


def recursive(ctx, key):
    found = []
    if isinstance(ctx, dict):
        for k, v in ctx.items():
            if k == key:
                found.append(v)
            found += recursive(v, key)
    elif isinstance(ctx, list):
        for v in ctx:
            found += recursive(v, key)
    return found


def fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def render(toks, ctx):
    out = []
    i = 0
    while i < len(toks):
        kind, val = toks[i]
        if kind == "text":
            out.append(val)
        elif val.startswith('"'):
            out.append(json.loads(val))
        elif val.startswith("range "):
            depth, j = 1, i + 1
            while depth:
                if toks[j] == ("action", "end"):
                    depth -= 1
                elif toks[j][0] == "action" and toks[j][1].startswith("range "):
                    depth += 1
                j += 1
            for item in select(ctx, val[len("range "):].strip()):
                out.append(render(toks[i + 1:j - 1], item))
            i = j
            continue
        elif val.startswith(".."):
            out.append(" ".join(fmt(v) for v in recursive(ctx, val[2:])))
        else:
            out.append(" ".join(fmt(v) for v in select(ctx, val)))
        i += 1
    return "".join(out)


def jsonpath(template, obj):
    return render(tokens(template), obj)


# ---- the cluster -----------------------------------------------------------------------------

KINDS = {"pod": "Pod", "pods": "Pod", "po": "Pod", "service": "Service", "services": "Service",
         "svc": "Service", "node": "Node", "nodes": "Node", "no": "Node"}
PLURAL = {"Pod": "pods", "Service": "services", "Node": "nodes"}


def cluster():
    with open(os.environ["FAKE_KUBECTL_CLUSTER"]) as f:
        return json.load(f)["items"]


def find(kind, ns, name):
    for o in cluster():
        m = o["metadata"]
        if o["kind"] == kind and m["name"] == name and (kind == "Node" or m.get("namespace") == ns):
            return o
    return None


def state_path():
    return os.path.join(os.environ["FAKE_KUBECTL_STATE"], "debug-pods.json")


def debug_pods():
    try:
        with open(state_path()) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save_debug_pods(pods):
    with open(state_path(), "w") as f:
        json.dump(pods, f)


def take(args, *names):
    """Removes `NAME VALUE` / `NAME=VALUE` from args; returns the last value or None."""
    value = None
    i = 0
    while i < len(args):
        a = args[i]
        hit = next((n for n in names if a == n or a.startswith(n + "=")), None)
        if hit is None:
            i += 1
            continue
        if a == hit:
            value = args[i + 1]
            del args[i:i + 2]
        else:
            value = a[len(hit) + 1:]
            del args[i]
    return value


def cmd_get(args):
    ns = take(args, "-n", "--namespace") or "default"
    output = take(args, "-o", "--output")
    kind = KINDS.get(args[0])
    if kind is None:
        fail(f'error: the server doesn\'t have a resource type "{args[0]}"')
    if len(args) == 1:
        objs = [o for o in cluster() if o["kind"] == kind and (kind == "Node" or o["metadata"].get("namespace") == ns)]
        if output == "name":
            for o in objs:
                print(f"{kind.lower()}/{o['metadata']['name']}")
            return 0
        doc = {"apiVersion": "v1", "kind": "List", "items": objs}
    else:
        doc = find(kind, ns, args[1])
        if doc is None:
            fail(f'Error from server (NotFound): {PLURAL[kind]} "{args[1]}" not found')
        if output == "name":
            print(f"{kind.lower()}/{args[1]}")
            return 0
    if output and output.startswith("jsonpath="):
        sys.stdout.write(jsonpath(output[len("jsonpath="):], doc))
    else:
        print(json.dumps(doc, indent=4))
    return 0


def cmd_debug(args):
    dash = args.index("--")
    args, command = args[:dash], args[dash + 1:]
    ns = take(args, "-n", "--namespace") or "default"
    image = take(args, "--image")
    if os.environ.get("FAKE_KUBECTL_FAIL") == "debug-no-profile":  # kubectl before 1.27
        fail("error: unknown flag: --profile\nSee 'kubectl debug --help' for usage.")
    if take(args, "--profile") != "sysadmin":
        fail("fake kubectl: the plugin must ask for --profile=sysadmin (privileged, host's / at /host)", 99)
    target = args[0]
    if not image:
        fail("error: you must specify --image when not using --copy-to.")
    node = target.split("/", 1)[1]
    if find("Node", None, node) is None:
        fail(f'Error from server (NotFound): nodes "{node}" not found')
    if os.environ.get("FAKE_KUBECTL_FAIL") == "debug-forbidden":
        fail(f'Error from server (Forbidden): pods "node-debugger-{node}-q7x2m" is forbidden: '
             f'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true, hostPID=true, '
             f'hostIPC=true), privileged (container "debugger" must not set securityContext.privileged=true)')
    pods = debug_pods()
    name = f"node-debugger-{node}-{'q7x2m' if not pods else 'k' + str(len(pods)).zfill(4)}"
    pods[name] = {"namespace": ns, "node": node, "image": image, "command": command, "running": False}
    save_debug_pods(pods)
    print(f"Creating debugging pod {name} with container debugger on node {node}.")
    return 0


def cmd_wait(args):
    ns = take(args, "-n", "--namespace") or "default"
    take(args, "--for")
    timeout = take(args, "--timeout")
    name = args[0].split("/", 1)[1]
    pod = debug_pods().get(name)
    if pod is None or pod["namespace"] != ns:
        fail(f'Error from server (NotFound): pods "{name}" not found')
    if os.environ.get("FAKE_KUBECTL_FAIL") == "wait-timeout":
        fail(f"error: timed out waiting for the condition on pods/{name}")
    pods = debug_pods()
    pods[name]["running"] = True
    save_debug_pods(pods)
    print(f"pod/{name} condition met")
    return 0


def cmd_exec(args):
    dash = args.index("--")
    args, command = args[:dash], args[dash + 1:]
    ns = take(args, "-n", "--namespace") or "default"
    name = args[0]
    pod = debug_pods().get(name)
    if pod is not None and pod["namespace"] == ns:
        if not pod["running"]:  # kubectl debug returns before the container runs
            fail('error: unable to upgrade connection: container not found ("debugger")')
        node = pod["node"]
    else:
        o = find("Pod", ns, name)
        if o is None:
            fail(f'Error from server (NotFound): pods "{name}" not found')
        node = o["spec"]["nodeName"]
    if os.environ.get("FAKE_KUBECTL_FAIL") == "exec-lost":
        fail("error: error sending request: Post \"https://10.0.0.1:6443/api/v1/namespaces/"
             f"{ns}/pods/{name}/exec?command=sh\": dial tcp 10.0.0.1:6443: connect: connection refused")
    import subprocess  # only here: most calls are `get`, and start-up time is the test's time

    env = dict(os.environ, FAKE_NODE=node, PATH=os.environ["FAKE_BIN"] + ":" + os.environ["PATH"])
    p = subprocess.run(command, env=env)
    if p.returncode:
        sys.stderr.write(f"command terminated with exit code {p.returncode}\n")
    return p.returncode


def cmd_delete(args):
    ns = take(args, "-n", "--namespace") or "default"
    take(args, "--wait")
    name = args[1]
    pods = debug_pods()
    if name not in pods or pods[name]["namespace"] != ns:
        fail(f'Error from server (NotFound): pods "{name}" not found')
    del pods[name]
    save_debug_pods(pods)
    print(f'pod "{name}" deleted')
    return 0


def cmd_config(args):
    # `config view --minify -o jsonpath={..namespace}`: a context without a namespace.
    return 0


def main():
    argv = sys.argv[1:]
    log(argv)
    args = list(argv)
    take(args, "--context")
    take(args, "--kubeconfig")
    verbs = {"get": cmd_get, "debug": cmd_debug, "wait": cmd_wait, "exec": cmd_exec,
             "delete": cmd_delete, "config": cmd_config}
    if not args or args[0] not in verbs:
        fail(f"fake kubectl: unexpected call {argv}", 99)
    sys.exit(verbs[args[0]](args[1:]))


if __name__ == "__main__":
    main()
