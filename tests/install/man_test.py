#!/usr/bin/env python3
"""The manual pages against what the code offers, so that they cannot drift.

usage: man_test.py P11CHAT SRCDIR MANDIR

p11chat(1) (man/p11chat.1.scd):
  - every command of 'p11chat --help' has a section '## NAME' under
    '# COMMANDS' (one section may hold several: '## listen, connect'), and
    every section names commands that exist;
  - every long option and sub-command in 'p11chat COMMAND --help' is in that
    command's section, and every option a section documents is in the --help
    of each command it names; an option anywhere in the page is an option of
    some command;
  - --help and --version are in '# OPTIONS';
  - every exit status of apps/app.h is in '# EXIT STATUS', and no other;
  - every environment variable the command or the provider reads (getenv,
    and the provider's configuration fallbacks) is in '# ENVIRONMENT'.
p11chat-provider(7) (man/p11chat-provider.7.scd):
  - every configuration key the provider reads is in '# CONFIGURATION', with
    its environment variable, and every key documented there is read (or is
    OpenSSL's own);
  - every key generation parameter of its own it reads is in '# KEY GENERATION'.
Then the pages the build made from them (MANDIR) must render with groff
without a warning.

Each failure names the option, command or key, the page and the section.
The checker also runs against broken copies of the pages, which it must catch.
"""
import os
import re
import shutil
import subprocess
import sys

OPT = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
OPENSSL_OWN_KEYS = {"module", "activate", "identity", "soft_load"}


def sections(text, level):
    """{heading: body} for the headings of one level ('#' or '##')."""
    out, name, body = {}, None, []
    mark = level + " "
    for line in text.splitlines():
        if line.startswith(mark):
            if name is not None:
                out[name] = "\n".join(body)
            name, body = line[len(mark):].strip(), []
        elif name is not None:
            if level == "##" and line.startswith("# "):
                out[name] = "\n".join(body)
                name, body = None, []
            else:
                body.append(line)
    if name is not None:
        out[name] = "\n".join(body)
    return out


class HelpError(Exception):
    pass


def run_help(p11chat, *args):
    r = subprocess.run([p11chat, *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise HelpError(f"'p11chat {' '.join(args)}' exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def code_facts(src):
    """What the code offers, read from the sources."""
    facts = {"exit": {}, "app_env": set(), "prov_env": set(), "prov_keys": {}, "keygen": {}}
    with open(os.path.join(src, "apps/app.h")) as f:
        for name, value in re.findall(r"#define\s+APP_(\w+)\s+(\d+)\b", f.read()):
            facts["exit"][value] = name
    getenv = re.compile(r'getenv\("([A-Z][A-Z0-9_]*)"\)')
    for d, key in (("apps", "app_env"), ("provider/src", "prov_env"), ("pkcs11/src", "prov_env")):
        for fn in sorted(os.listdir(os.path.join(src, d))):
            if fn.endswith(".c"):
                with open(os.path.join(src, d, fn)) as f:
                    facts[key].update(getenv.findall(f.read()))
    with open(os.path.join(src, "provider/include/p11chat_provider.h")) as f:
        header = f.read()
    macros = dict(re.findall(r'#define\s+(P11CHAT_CONF_\w+)\s*(?:\\\s*)?"([^"]+)"', header))
    pkey_params = dict(re.findall(r'#define\s+(P11CHAT_PKEY_PARAM_\w+)\s*(?:\\\s*)?"([^"]+)"', header))
    for fn in sorted(os.listdir(os.path.join(src, "provider/src"))):
        if not fn.endswith(".c"):
            continue
        with open(os.path.join(src, "provider/src", fn)) as f:
            code = f.read()
        # Key generation parameters of our own that the provider reads.
        for m in re.findall(r"OSSL_PARAM_locate_const\(\s*\w+\s*,\s*(P11CHAT_PKEY_PARAM_\w+)\)", code):
            facts["keygen"][pkey_params.get(m, m)] = m
        # The section's keys, asked of the core with OSSL_PARAM_construct_*.
        for ref in re.findall(r"OSSL_PARAM_construct_\w+\(\s*(P11CHAT_CONF_\w+|\"[^\"]+\")", code):
            k = ref.strip('"') if ref.startswith('"') else macros.get(ref, ref)
            facts["prov_keys"].setdefault(k, None)
        # The environment variable standing in for each: conf_value(&conf[N], "ENV").
        for idx, env in re.findall(r'conf_value\(\s*&\w+\[(\d+)\]\s*,\s*"([A-Z0-9_]+)"\)', code):
            facts["prov_env"].add(env)
            m = re.search(r"\w+\[" + idx + r"\]\s*=\s*OSSL_PARAM_construct_\w+\(\s*(P11CHAT_CONF_\w+|\"[^\"]+\")", code)
            if m:
                k = m.group(1).strip('"') if m.group(1).startswith('"') else macros.get(m.group(1))
                facts["prov_keys"][k] = env
    return facts


def command_facts(p11chat):
    top = run_help(p11chat, "--help")
    cmds, in_cmds = [], False
    for line in top.splitlines():
        if line.strip().endswith(":") and not line.startswith(" "):
            in_cmds = line.strip() == "commands:"
            continue
        m = re.match(r"^  ([a-z][a-z0-9-]*)(\s{2,}|$)", line)
        if in_cmds and m:
            cmds.append(m.group(1))
    helps, errs = {}, []
    for c in cmds:
        try:
            text = run_help(p11chat, c, "--help")
        except HelpError as e:
            errs.append(f"{e} (a command of 'p11chat --help' without help of its own)")
            continue
        opts = set(OPT.findall(text)) - {"--help"}
        subs = set(re.findall(r"^(?:usage:)?\s*p11chat " + re.escape(c) + r" ([a-z][a-z-]*)\b", text, re.M))
        helps[c] = (opts, subs)
    return set(OPT.findall(top)), [c for c in cmds if c in helps], helps, errs


def check_p11chat1(page, text, top_opts, cmds, helps, facts):
    errs = []
    top = sections(text, "#")
    for need in ("OPTIONS", "COMMANDS", "EXIT STATUS", "ENVIRONMENT", "FILES"):
        if need not in top:
            errs.append(f"{page}: no section '# {need}'")
    for o in sorted(top_opts):
        if not re.search(r"^\*" + re.escape(o) + r"\*", top.get("OPTIONS", ""), re.M):
            errs.append(f"{page}: option {o} of 'p11chat --help' is not documented in '# OPTIONS'")

    by_cmd = {}
    for heading, body in sections(top.get("COMMANDS", ""), "##").items():
        names = [n for n in re.split(r"[,\s]+", heading) if n]
        for n in names:
            by_cmd[n] = (heading, body)
            if n not in helps:
                errs.append(f"{page}: section '## {heading}' documents command '{n}', "
                            "which 'p11chat --help' does not list")
    all_opts = set(top_opts)
    for c in cmds:
        opts, subs = helps[c]
        all_opts |= opts
        if c not in by_cmd:
            errs.append(f"{page}: command '{c}' (in 'p11chat --help') has no section: "
                        f"add '## {c}' under '# COMMANDS'")
            continue
        heading, body = by_cmd[c]
        documented = set(OPT.findall(body))
        for o in sorted(opts - documented):
            errs.append(f"{page}: option {o} of 'p11chat {c} --help' is not documented "
                        f"in section '## {heading}'")
        for o in sorted(documented - opts - {"--help"}):
            errs.append(f"{page}: section '## {heading}' documents {o}, which "
                        f"'p11chat {c} --help' does not show")
        for s in sorted(subs):
            if not re.search(r"\b" + re.escape(c) + " " + re.escape(s) + r"\b", body):
                errs.append(f"{page}: 'p11chat {c} {s}' (in 'p11chat {c} --help') is not "
                            f"in section '## {heading}'")
    for n, line in enumerate(text.splitlines(), 1):
        for o in OPT.findall(line):
            if o not in all_opts and o != "--help":
                errs.append(f"{page}:{n}: {o} is not an option of any command "
                            "('p11chat COMMAND --help')")

    status = top.get("EXIT STATUS", "")
    listed = set(re.findall(r"^\*(\d+)\*", status, re.M))
    for v, name in sorted(facts["exit"].items()):
        if v not in listed:
            errs.append(f"{page}: exit status {v} (APP_{name} in apps/app.h) is not in '# EXIT STATUS'")
    for v in sorted(listed - set(facts["exit"])):
        errs.append(f"{page}: '# EXIT STATUS' lists {v}, which apps/app.h does not define")

    env = top.get("ENVIRONMENT", "")
    for var in sorted(facts["app_env"] | facts["prov_env"]):
        if not re.search(r"\*" + re.escape(var) + r"\*", env):
            who = "the command" if var in facts["app_env"] else "the provider"
            errs.append(f"{page}: environment variable {var} ({who} reads it) is not in '# ENVIRONMENT'")
    return errs


def check_provider7(page, text, facts):
    errs = []
    conf = sections(text, "#").get("CONFIGURATION")
    if conf is None:
        return [f"{page}: no section '# CONFIGURATION'"]
    entries = {}
    key_line = re.compile(r"^\*([a-z0-9_-]+)\* =")
    current = None
    for line in conf.splitlines():
        m = key_line.match(line)
        if m:
            current = m.group(1)
            entries[current] = ""
        elif current is not None and line.startswith("\t"):
            entries[current] += line + "\n"
        else:
            current = None
    if not facts["prov_keys"]:
        errs.append("provider/src: no configuration key found (has the way keys are read changed?)")
    for k, env in sorted(facts["prov_keys"].items()):
        if k not in entries:
            errs.append(f"{page}: configuration key '{k}' (read by the provider) is not in "
                        f"'# CONFIGURATION': add '*{k}* = ...'")
        elif env and f"*{env}*" not in entries[k]:
            errs.append(f"{page}: configuration key '{k}' does not name its environment variable {env}")
    for k in sorted(set(entries) - set(facts["prov_keys"]) - OPENSSL_OWN_KEYS):
        errs.append(f"{page}: '# CONFIGURATION' documents '{k}', which the provider does not read")
    keygen = sections(text, "#").get("KEY GENERATION", "")
    for name, macro in sorted(facts["keygen"].items()):
        if f"*{name}*" not in keygen:
            errs.append(f"{page}: key generation parameter '{name}' ({macro}, read by the provider) "
                        "is not in '# KEY GENERATION'")
    return errs


def check_roff(mandir, pages):
    groff = shutil.which("groff")
    if groff is None:
        print("man_test: groff not found: the built pages are not rendered (skipped that part)")
        return []
    errs = []
    for p in pages:
        path = os.path.join(mandir, p)
        if not os.path.exists(path):
            if shutil.which("scdoc") is None:
                print(f"man_test: scdoc not installed, {p} not built: its rendering is not "
                      "checked (skipped that part; bash scripts/setup.sh installs scdoc)")
            else:
                errs.append(f"{path}: not built, though scdoc is installed (reconfigure the build)")
            continue
        r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", path], capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            errs.append(f"{path}: groff: {r.stderr.strip() or 'exit ' + str(r.returncode)}")
    return errs


def main():
    p11chat, src, mandir = sys.argv[1:4]
    facts = code_facts(src)
    top_opts, cmds, helps, help_errs = command_facts(p11chat)
    pages = {}
    for p in ("p11chat.1", "p11chat-provider.7"):
        with open(os.path.join(src, "man", p + ".scd")) as f:
            pages[p] = f.read()
    p1, p7 = "man/p11chat.1.scd", "man/p11chat-provider.7.scd"

    def check(t1, t7):
        return check_p11chat1(p1, t1, top_opts, cmds, helps, facts) + check_provider7(p7, t7, facts)

    errs = help_errs + check(pages["p11chat.1"], pages["p11chat-provider.7"])

    # The checker itself: each broken copy must give exactly the message expected.
    c0 = cmds[0]
    o0 = sorted(helps[c0][0])[0]
    heading = next(h for h in sections(sections(pages["p11chat.1"], "#")["COMMANDS"], "##")
                   if c0 in re.split(r"[,\s]+", h))
    first = next(iter(facts["prov_keys"]), "pkcs11-module")
    broken = [
        (re.sub(r"(?<![\w-])" + re.escape(o0) + r"(?![\w-])", "--gone", pages["p11chat.1"]),
         pages["p11chat-provider.7"],
         f"{p1}: option {o0} of 'p11chat {c0} --help' is not documented in section '## {heading}'"),
        (pages["p11chat.1"].replace("\n## " + heading + "\n", "\n## " + heading + ", nosuch\n", 1),
         pages["p11chat-provider.7"],
         f"{p1}: section '## {heading}, nosuch' documents command 'nosuch', which 'p11chat --help' does not list"),
        (pages["p11chat.1"].replace("\n*1*\n", "\n*7*\n", 1), pages["p11chat-provider.7"],
         f"{p1}: exit status 1 (APP_FAIL in apps/app.h) is not in '# EXIT STATUS'"),
        (pages["p11chat.1"], pages["p11chat-provider.7"].replace(f"*{first}* =", "*renamed* =", 1),
         f"{p7}: configuration key '{first}' (read by the provider) is not in '# CONFIGURATION': "
         f"add '*{first}* = ...'"),
    ]
    if not facts["keygen"]:
        errs.append("provider/src: no key generation parameter found (has the way they are read changed?)")
    else:
        kg = sorted(facts["keygen"])[0]
        kg7 = pages["p11chat-provider.7"]
        i = kg7.index("# KEY GENERATION")
        broken.append((pages["p11chat.1"], kg7[:i] + kg7[i:].replace(f"*{kg}*", "*gone*"),
                       f"{p7}: key generation parameter '{kg}' ({facts['keygen'][kg]}, read by "
                       "the provider) is not in '# KEY GENERATION'"))
    for t1, t7, want in broken:
        got = check(t1, t7)
        if want not in got:
            errs.append(f"man_test self-check: a broken page was not caught as expected: wanted "
                        f"'{want}', got {got}")

    errs += check_roff(mandir, pages.keys())
    for e in errs:
        print(e)
    if errs:
        print(f"man_test: {len(errs)} problem(s)")
        return 1
    nopts = sum(len(h[0]) for h in helps.values())
    print(f"man_test: {len(cmds)} commands, {nopts} command options, {len(facts['prov_keys'])} "
          f"provider keys, {len(facts['keygen'])} key generation parameters, "
          f"{len(facts['app_env'] | facts['prov_env'])} environment variables: "
          "all documented; the pages render cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
