"""The options of ``buildspec ci`` (argparse only: cli.py imports this for every command)."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    ci = commands.add_parser("ci", help="write a GitLab CI pipeline or a GitHub Actions workflow: one job per build")
    ci.add_argument("system", choices=("gitlab", "github", "record", "stale"),
                    help="the CI system; 'record' and 'stale' are steps of --only-stale pipelines (docs/ci.md)")
    ci.add_argument("targets", nargs="*", metavar="TARGET",
                    help="images, matrix cells or groups (default: the 'default' group)")
    ci.add_argument("-o", "--output", metavar="FILE", help="write the pipeline here (default: standard output)")
    ci.add_argument("--backend", choices=("auto", "buildx", "kaniko", "buildah"),
                    help="use this backend for every image (auto: buildx in a generated pipeline)")
    ci.add_argument("--publish", choices=("atomic", "eager"),
                    help="atomic (default): the manifest jobs run only after every build job succeeded")
    ci.add_argument("--runner", action="append", default=[], metavar="PLATFORM=LABEL[,LABEL]",
                    help="runner labels (GitLab tags:, GitHub runs-on:) of a platform's jobs; PLATFORM 'default' "
                         "for the manifest jobs and unlisted platforms; LABEL 'none' for no tags (repeatable)")
    ci.add_argument("--job-image", action="append", default=[], metavar="BACKEND=IMAGE",
                    help="the image a backend's jobs run in (BACKEND buildx, kaniko, buildah or buildspec for the "
                         "manifest jobs); IMAGE 'none' runs them in the runner's shell (repeatable)")
    ci.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                    help="allow plain HTTP / unverified TLS for this registry (loopback always is)")
    ci.add_argument("--kaniko-executor", metavar="PATH", help="kaniko's executor in the kaniko jobs "
                                                               "(default /kaniko/executor)")
    ci.add_argument("--kaniko-image", metavar="IMAGE", help="the kaniko jobs' image (same as --job-image kaniko=)")
    ci.add_argument("--max-jobs", type=int, metavar="N",
                    help="at most N jobs in the pipeline (default: GitLab.com free tier's 500, GitHub's 256)")
    ci.add_argument("--name", default="buildspec", help="the GitHub workflow's name (default: buildspec)")
    ci.add_argument("--one-publish-job", action="store_true",
                    help="one job publishes every index (run --manifests-only with every image): with atomic "
                         "publishing no tag moves unless every index is in, across images too")
    ci.add_argument("--only-stale", action="store_true",
                    help="only the builds that are not up to date get a job (asks the registries, as plan does)")
    ci.add_argument("--trigger", action="store_true",
                    help="gitlab: write the pipeline that generates this one in the pipeline itself and runs it "
                         "as a child pipeline (commit it as .gitlab-ci.yml)")
    record = ci.add_argument_group("ci record (in the generated manifest jobs)")
    record.add_argument("--digest", action="append", default=[], metavar="NODE=DIGEST", help=argparse.SUPPRESS)
    record.add_argument("--record", action="append", default=[], metavar="NODE=KEY", help=argparse.SUPPRESS)
    record.add_argument("--reuse", action="append", default=[], metavar="NODE=DIGEST", help=argparse.SUPPRESS)
    record.add_argument("--plan-from-env", metavar="NAME", help=argparse.SUPPRESS)
    record.add_argument("--check", metavar="FILE", help=argparse.SUPPRESS)
    return ci
