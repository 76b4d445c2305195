"""Fetch every page of a Space's conference listing with bare requests, then exit.

    python bench/bare_fetch.py SPACE_URL PROJECT_ID API_TOKEN PAGE_SIZE

The floor bench/process_bench.py compares the whole sync process with: what any
process must at least spend to start Python and read the same pages.
"""

import sys

import requests


def main() -> None:
    space_url, project_id, api_token, page_size = sys.argv[1:5]
    session = requests.Session()
    session.auth = (project_id, api_token)
    next_url: str | None = f"{space_url}/api/video/conferences?page_size={page_size}"
    rows = 0
    while next_url:
        body = session.get(next_url, timeout=120).json()
        rows += len(body["data"])
        next_url = body["links"].get("next")
    print(rows)


if __name__ == "__main__":
    main()
