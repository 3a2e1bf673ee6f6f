#!/usr/bin/env python3
"""Shell completion that cannot drift from the CLI (cli/completion/): every command of
`dpinspect --help` and every option of `dpinspect CMD --help` is completed by bash and listed for
zsh, nothing else is, and an option's enumerated values (CLI11's `{a,b}`, a type name like
`interp|kernel|both`, or a list in the help text such as --proto's) are exactly what is offered.
Bash completion runs for real: cli/completion/dpinspect.bash is sourced in one bash process and
its COMPREPLY read back for each case. zsh is not needed: its file is read as text.

    test_completion.py --dpinspect build/cli/dpinspect
"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
BASH_FILE = os.path.join(TOP, "cli", "completion", "dpinspect.bash")
ZSH_FILE = os.path.join(TOP, "cli", "completion", "_dpinspect")
# Options whose values are only listed in their help text: the regular expression that finds the
# list there (words separated by ", " or " or ").
VALUES_IN_HELP = {
    "--proto": r"^([a-z0-9]+(?:, [a-z0-9]+)*) or a",
    "--ct": r":\s*([a-z]+(?:, [a-z]+)*)",
}


def help_text(dpinspect, *args):
    p = subprocess.run([dpinspect, *args, "--help"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        sys.exit(f"dpinspect {' '.join(args)} --help exited {p.returncode}: {p.stderr}")
    return p.stdout


def subcommands(text):
    section = text.split("\nSubcommands:\n", 1)[1] if "\nSubcommands:\n" in text else ""
    return re.findall(r"^ {2}(\w[\w-]*)", section, re.M)


def help_options(text):
    """{option: values or None} for every name (short and long) in the "Options:" section:
    '  -o,--output TEXT:{text,json}=text  Report format ...'."""
    section = text.split("\nOptions:\n", 1)[1] if "\nOptions:\n" in text else ""
    section = re.split(r"\n(?:Subcommands|Positionals):\n", section)[0]
    out = {}
    for m in re.finditer(r"^ {2}((?:-\w,)?--[\w][\w-]*)([^\n]*)((?:\n {10,}[^\n]*)*)", section, re.M):
        names, rest, more = m.group(1).split(","), m.group(2), m.group(3)
        spec, _, desc = rest.strip().partition("  ")
        desc = " ".join((desc + " " + more).split())
        values = None
        if (v := re.search(r":\{([^}]*)\}", spec)):
            values = set(v.group(1).split(","))
        elif (v := re.match(r"([a-z]+(?:\|[a-z]+)+)\b", spec.strip())):
            values = set(v.group(1).split("|"))
        elif names[-1] in VALUES_IN_HELP:
            v = re.search(VALUES_IN_HELP[names[-1]], desc)
            values = set(v.group(1).split(", ")) if v else {"<not found in the help text>"}
        for n in names:
            out[n] = values
    return out


def bash_complete(lines):
    """COMPREPLY for each command line (the cursor at its end), from one bash process."""
    script = [f"source {BASH_FILE!r}"]
    for line in lines:
        # As bash splits the line: at blanks, and around "=" (COMP_WORDBREAKS).
        words = [w for word in line.split(" ") for w in re.split(r"(=)", word) if w != ""] or [""]
        if line.endswith(" "):
            words.append("")
        arr = " ".join(f"'{w}'" for w in words)
        script += [f"COMP_WORDS=({arr}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
                   f"COMP_POINT={len(line)}; COMPREPLY=(); _dpinspect dpinspect",
                   "printf '%s\\n' \"${COMPREPLY[@]}\" | sort; echo '--end--'"]
    p = subprocess.run(["bash", "--norc", "--noprofile"], input="\n".join(script) + "\n", cwd=TOP,
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0 or p.stderr:
        sys.exit(f"bash completion failed (exit {p.returncode}): {p.stderr}")
    replies = p.stdout.split("--end--\n")[:-1]
    return [set(r.split("\n")) - {""} for r in replies]


def zsh_spec(text):
    """{command: {option: values or None}} from the _dpinspect_CMD functions, and the commands of
    the main function's list."""
    out = {}
    for m in re.finditer(r"^_dpinspect_(\w+)\(\) \{\n(.*?)^\}", text, re.M | re.S):
        opts = {}
        for line in m.group(2).splitlines():
            line = line.strip()
            if not line.startswith("'"):
                continue
            names = re.findall(r"\{(-\w),(--[\w-]+)\}", line)
            names = list(names[0]) if names else re.findall(r"^'(?:\*)?(?:\([^)]*\))?(--?[\w-]+)", line)
            v = re.search(r":\(([^)]*)\)'", line)
            for n in names:
                opts[n] = set(v.group(1).split()) if v else None
        out[m.group(1)] = opts
    main = re.search(r"commands=\((.*?)\)", text, re.S)
    commands = re.findall(r"'(\w+):", main.group(1)) if main else []
    return {k: v for k, v in out.items() if k in commands}, commands


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dpinspect", required=True)
    a = ap.parse_args()
    failed = []
    top = help_text(a.dpinspect)
    commands = subcommands(top)
    if len(commands) < 4:
        sys.exit(f"cannot read the commands of `dpinspect --help`: {commands}")
    global_opts = set(help_options(top))
    per_cmd = {c: help_options(help_text(a.dpinspect, c)) for c in commands}

    # Bash, run: (description, command line, expected COMPREPLY).
    cases = [
        ("commands", "dpinspect ", set(commands)),
        ("a command's prefix", "dpinspect ins", {"inspect"}),
        ("global options", "dpinspect -", global_opts),
        ("--dataplane values", "dpinspect inspect --dataplane ", {"auto", "nftables", "ebpf"}),
        ("--dataplane=e", "dpinspect inspect --dataplane=e", {"ebpf"}),
        ("a file after --ruleset", "dpinspect inspect --ruleset examples/seed/nftables.j",
         {"examples/seed/nftables.json"}),
        ("--dataplane= (nothing typed after =)", "dpinspect inspect --dataplane=", {"auto", "nftables", "ebpf"}),
        ("options after an option's value", "dpinspect inspect --proto tcp --d",
         {"--dport", "--dataplane", "--dst"}),
    ]
    for cmd, opts in per_cmd.items():
        cases.append((f"{cmd}: the options of `dpinspect {cmd} --help`", f"dpinspect {cmd} -", set(opts)))
        for opt, values in opts.items():
            if values is not None:
                cases.append((f"{cmd} {opt}: the values of --help", f"dpinspect {cmd} {opt} ", values))
    replies = bash_complete([line for _, line, _ in cases])
    for (name, line, want), got in zip(cases, replies):
        if got != want:
            extra, missing = sorted(got - want), sorted(want - got)
            failed.append(f"bash {name}: `{line}<TAB>` offers {sorted(got)}; missing {missing}, not in --help {extra}")
        else:
            print(f"ok   bash {name}")

    # zsh, read.
    zsh, zsh_commands = zsh_spec(open(ZSH_FILE).read())
    if sorted(zsh_commands) != sorted(commands):
        failed.append(f"zsh: commands {zsh_commands}, --help lists {commands}")
    for cmd, opts in per_cmd.items():
        have = zsh.get(cmd)
        if have is None:
            failed.append(f"zsh {cmd}: no _dpinspect_{cmd} function")
            continue
        missing, extra = sorted(set(opts) - set(have)), sorted(set(have) - set(opts))
        if missing or extra:
            failed.append(f"zsh {cmd}: missing {missing}, not in --help {extra}")
        for opt, values in opts.items():
            if values is not None and opt in have and have[opt] != values:
                failed.append(f"zsh {cmd} {opt}: values {sorted(have[opt] or [])}, --help {sorted(values)}")
        if not missing and not extra:
            print(f"ok   zsh {cmd}: {len(opts)} options as in --help")

    for f in failed:
        print(f"FAIL {f}")
    print(f"{len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
