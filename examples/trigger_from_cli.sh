#!/usr/bin/env bash
# Trigger atlasflow jobs from the command line, then read their outcome back.
#
# Needs a Prefect server (PREFECT_API_URL), the deployments of prefect.yaml and a worker serving them.
# The write jobs below are dry runs; the real-run variants are the commented lines.
#
# Quoting: --param KEY=VALUE parses VALUE as JSON; a value that is not JSON and holds no double quote is
# taken as a plain string (--param jql='project = OPS' works). JQL with double quotes, or any nested
# value, reads best as one JSON object in --params.
# --watch follows the run to its end and exits 0 for Completed, 1 for anything else (printed after each run).
set -uo pipefail
WATCH=(--watch --watch-timeout 900)

# Start a deployment with parameters, follow it to its end, and say how --watch exited.
run_and_watch() {
  local deployment=$1
  shift
  prefect deployment run "$deployment" "$@" "${WATCH[@]}"
  echo "$deployment: --watch exited $?"
}

echo "== export: DEMO-1 and everything below it, to Excel"
run_and_watch 'jira-export/demo-export' --param root_tickets='["DEMO-1"]'

echo "== permission check: exit 0 when all are granted, 1 naming each missing permission in the state message"
run_and_watch 'jira-permissions-check/permissions-check' \
  --param project_key=OPS \
  --param permissions='["BROWSE_PROJECTS", "EDIT_ISSUES", "DELETE_ISSUES"]'

echo "== bulk update, dry run: before/after per issue in artifact jira-bulk-update-plan"
run_and_watch 'jira-bulk-update/bulk-update' \
  --params '{"jql": "project = \"OPS\" AND priority = Low", "fields": {"Priority": {"name": "Medium"}}}' \
  --param dry_run=true
# real run, never more than 10 issues changed:
#   ... --param dry_run=false --param max_issues=10

echo "== guarded delete, dry run: what would go, in artifact jira-delete-issues-plan"
run_id=$(prefect deployment run 'jira-delete-issues/guarded-delete' \
  --param jql='key in (OPS-8, OPS-9, OPS-10)' --param confirm_count=3 --param dry_run=true |
  awk '/UUID:/ {print $NF}')
echo "started flow run $run_id"
prefect flow-run watch "$run_id" --timeout 900
# real run: confirm_count must equal the number of matched issues the dry run reported
#   ... --param confirm_count=3 --param dry_run=false

echo "== reading back"
prefect flow-run inspect "$run_id"                       # state, message, parameters
prefect flow-run logs "$run_id" --tail                   # the run's last log lines
prefect flow-run ls --flow-name jira-bulk-update --limit 5
prefect artifact inspect jira-bulk-update-plan --limit 1 # the latest version of a keyed artifact
prefect artifact inspect jira-delete-issues-plan --limit 1 --output json
python "$(dirname "$0")/read_results.py" "$run_id"       # state + table artifacts, via the Python client
