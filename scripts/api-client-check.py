"""A user of wasmq through a client generated from its OpenAPI document
(openapi-python-client): upload a module, set an alias, dispatch (both forms),
wait, and read results whose payloads are arrays. Run by
scripts/api-conformance.sh with the generated package importable:

    python api-client-check.py URL TOKEN MODULE.wasm
"""

import sys
from http import HTTPStatus

from wasmq_client import AuthenticatedClient
from wasmq_client.api.aliases import get_alias, set_alias
from wasmq_client.api.jobs import create_job, dispatch_job, get_job, list_jobs, wait_job
from wasmq_client.api.modules import upload_module
from wasmq_client.models import AliasRequest, JobRequest, JobStatus, JobView, ModuleView
from wasmq_client.types import File


def check(condition, what):
    if not condition:
        sys.exit(f"api-client-check: {what}")


def ended(client, job_id):
    """Waits for the job with the generated `waitJob` until it has ended."""
    for _ in range(20):
        job = wait_job.sync(job_id, client=client, timeout_ms=30000)
        check(isinstance(job, JobView), f"waitJob answered {job!r}")
        if job.status in (JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.CANCELLED):
            return job
    sys.exit(f"api-client-check: job {job_id} did not end")


def main(url, token, module_path):
    client = AuthenticatedClient(base_url=url, token=token, raise_on_unexpected_status=True)
    with open(module_path, "rb") as f:
        upload = upload_module.sync_detailed(
            client=client, body=File(payload=f.read(), file_name="echo.wasm", mime_type="application/wasm")
        )
    check(upload.status_code in (HTTPStatus.CREATED, HTTPStatus.OK), f"uploadModule: {upload.status_code} {upload.content!r}")
    module = upload.parsed
    check(isinstance(module, ModuleView) and module.digest.startswith("blake3:"), f"uploadModule: {module!r}")

    alias = set_alias.sync("client-echo", client=client, body=AliasRequest(module=module.digest, max_attempts=2))
    check(getattr(alias, "version", None) == 1, f"setAlias: {alias!r}")
    check(get_alias.sync("client-echo", client=client).module == module.digest, "getAlias: another module")

    payload = [1, "two", {"three": [3]}, None]
    created = create_job.sync(client=client, body=JobRequest(alias="client-echo", payload=payload))
    check(isinstance(created, JobView), f"createJob: {created!r}")
    job = ended(client, created.id)
    check(job.status == JobStatus.SUCCEEDED, f"job {job.id}: {job.status} {job.error!r}")
    check(job.payload == payload and job.result == payload, f"job {job.id}: {job.payload!r} -> {job.result!r}")

    accepted = dispatch_job.sync("client-echo", client=client, body=[4, 5], priority=900)
    check(accepted is not None and hasattr(accepted, "id"), f"dispatchJob: {accepted!r}")
    job = ended(client, accepted.id)
    check(job.result == [4, 5] and job.priority == 900, f"dispatched job: {job.to_dict()!r}")

    page = list_jobs.sync(client=client, alias="client-echo", limit=10)
    check({j.id for j in page.jobs} == {created.id, accepted.id}, f"listJobs: {[j.id for j in page.jobs]}")
    check(get_job.sync(created.id, client=client).result == payload, "getJob: another result")
    print("api-client-check: upload, alias, dispatch, wait and array results through the generated client: ok")


if __name__ == "__main__":
    main(*sys.argv[1:])
