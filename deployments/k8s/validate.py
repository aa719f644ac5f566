"""Validates rendered Kubernetes manifests offline.

Usage: validate.py --crd keda.sh_scaledobjects.yaml [-k VERSION] FILE...

Built-in kinds are checked strictly (unknown fields are errors) against the
Kubernetes OpenAPI schemas that the kubernetes-validate package ships. Custom
resources are checked against the openAPIV3Schema of the CRDs given with
--crd, made strict the same way (an object with properties and no
additionalProperties or x-kubernetes-preserve-unknown-fields rejects unknown
fields). A kind with no schema at all is an error, not a skip.
Prints one line per resource; exits 1 when any is invalid.
"""

import argparse
import sys

import jsonschema
import kubernetes_validate
import yaml


def strict(schema):
    """A copy of an openAPIV3Schema that rejects unknown fields."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schemas(paths):
    """Maps (apiVersion, kind) to a strict JSON schema, from CRD files."""
    out = {}
    for p in paths:
        with open(p) as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group = crd["spec"]["group"]
                kind = crd["spec"]["names"]["kind"]
                for v in crd["spec"]["versions"]:
                    s = v.get("schema", {}).get("openAPIV3Schema")
                    if s:
                        out[(group + "/" + v["name"], kind)] = strict(s)
    return out


def name(doc):
    return "%s/%s" % (doc.get("kind"), (doc.get("metadata") or {}).get("name"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", "--kubernetes-version", default=kubernetes_validate.latest_version())
    ap.add_argument("--crd", action="append", default=[])
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    crds = crd_schemas(a.crd)
    bad = n = 0
    for path in a.files:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        if not docs:
            print("%s: no resources" % path)
            bad += 1
        for doc in docs:
            n += 1
            what = "%s %s" % (path, name(doc))
            key = (doc.get("apiVersion"), doc.get("kind"))
            try:
                if key in crds:
                    jsonschema.validate(doc, crds[key])
                    how = "CRD schema"
                else:
                    kubernetes_validate.validate(doc, a.kubernetes_version, strict=True)
                    how = "Kubernetes %s schema" % a.kubernetes_version
            except jsonschema.ValidationError as e:
                loc = "/".join(str(p) for p in e.absolute_path)
                print("INVALID %s: %s: %s" % (what, loc or "(root)", e.message))
                bad += 1
                continue
            except kubernetes_validate.ValidationError as e:
                loc = "/".join(str(p) for p in e.path)
                print("INVALID %s: %s: %s" % (what, loc or "(root)", e.message))
                bad += 1
                continue
            except kubernetes_validate.SchemaNotFoundError:
                print("INVALID %s: no schema for %s %s (pass its CRD with --crd)" % (what, key[0], key[1]))
                bad += 1
                continue
            print("ok %s (%s)" % (what, how))
    print("validate.py: %d resources, %d invalid" % (n, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
