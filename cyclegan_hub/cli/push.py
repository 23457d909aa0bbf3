"""``cyclegan-hub push``: both generators of a run folder to the Hub, as twin repos."""

from __future__ import annotations

import argparse

from .common import say


def add(subparsers) -> None:
    p = subparsers.add_parser(
        "push",
        help="push a trained or converted pair to the Hub",
        description="Push both generators of a run folder to the Hub: the forward one to --repo-id, the reverse "
        "one to its twin (the name's AtoB part swapped: mnist-6to9 -> mnist-9to6, else <name>-reverse). "
        "Each repo gets model.safetensors, config.json, a model card and a sample image, in one commit. Only regular "
        "files inside the run folder are read (links are refused or skipped, and said). The token comes from "
        "HF_TOKEN or the stored login.",
    )
    p.add_argument("run_dir", help="a run folder (with generator_AtoB/ and generator_BtoA/)")
    p.add_argument("--repo-id", required=True, help="repo of the A -> B generator, e.g. user/mnist-6to9")
    p.add_argument("--reverse-repo-id", help="repo of the B -> A generator (default: the twin name)")
    p.add_argument("--private", action="store_true", help="create the repos as private")
    p.add_argument("--revision", help="branch to push to (created if missing; default main)")
    p.add_argument("--commit-message", help="commit message of both commits")
    p.add_argument(
        "--base-model-id",
        help="for one-step translators trained or converted on a local copy of their "
        "base: the Hub repo it is a copy of (e.g. stabilityai/sd-turbo), written into config.json",
    )
    p.add_argument(
        "--include-training-state",
        action="store_true",
        help="also push discriminators, optimizers and step (safetensors + JSON) to resume from the Hub",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub.repos import push_pair

    report = push_pair(
        args.run_dir,
        args.repo_id,
        reverse_repo_id=args.reverse_repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        include_training_state=args.include_training_state,
        base_model_id=args.base_model_id,
    )
    for reason in report.skipped:
        say(f"skipped {reason}")
    for repo, url in report.commits.items():
        print(f"pushed {repo}: {url}")
    return 0
