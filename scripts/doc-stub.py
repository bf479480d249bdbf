"""Writes the documentation stub of a binary module: NAME.py holding the DOCUMENTATION,
EXAMPLES and RETURN of modules/NAME/NAME.yml (the one source), for the collection.

ansible-doc -l reads each module's own file for its short description, and an ELF
binary fails that read ("documentation formatting error"). Ansible's documented layout
for modules not written in Python is a .py file beside the module that holds only the
documentation; the collection ships the binary under bin/ with plugins/modules/NAME a
symlink to it (the plugin lister skips symlinks, the module loader follows them).

    python3 scripts/doc-stub.py modules/NAME/NAME.yml > NAME.py
"""

import sys

import yaml

SECTIONS = ("DOCUMENTATION", "EXAMPLES", "RETURN")


def stub(sidecar: str) -> str:
    with open(sidecar, encoding="utf-8") as handle:
        docs = yaml.safe_load(handle)
    out = [
        "# Documentation of a binary module (the static executable beside this file, from\n"
        "# bin/): ansible-doc reads it; the module itself is never this file.\n"
    ]
    for section in SECTIONS:
        value = docs.get(section)
        if value is None:
            continue
        text = value if isinstance(value, str) else yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100)
        if "'''" in text:
            raise SystemExit(f"{sidecar}: {section} contains ''' and cannot be quoted in a stub")
        out.append(f"\n{section} = r'''\n{text}'''\n")
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(stub(sys.argv[1]))
