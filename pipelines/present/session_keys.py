"""Names of the values a browser session keeps in `st.session_state`, in one place, so that the
entry file and every page agree on them (a misspelt key is an AttributeError, not a silent miss)."""

from __future__ import annotations

WAVE = "wave"                    # the wave chosen in the sidebar (also ?wave= in the URL)
CITY = "city"                    # the city chosen in the sidebar, "" for the province (?city=)
COUNTY = "county"                # the county shown on 县区画像 (?county=)
ROLE = "role"                    # viewer or analyst, re-derived from the grant on every run
USER_NAME = "user_name"          # who is signed in, for the sidebar and the audit
ACCESS_GRANT = "access_grant"    # the server-signed grant (pipelines.present.access)
PENDING_WAVE = "pending_wave"    # a wave just published: the sidebar switches to it once
FLASH = "flash"                  # a message shown once after a rerun (publish results)
UPLOAD_WAVE = "upload_wave"      # the wave proposed for the next upload
UPLOAD_ROUND = "upload_round"    # bumped after a publish so the uploader starts empty
DECK = "deck"                    # the last generated deck: (its key, its bytes)
