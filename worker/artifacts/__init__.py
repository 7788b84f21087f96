"""Evidence (EML, attachments, copies of removed attachments) in a content-addressed, write-once store.

`store` holds what every backend shares, `local` and `s3` the two backends EWS_IR_ARTIFACT_URL chooses
between (`location`), `names` the file-name and media-type rules for attacker-chosen metadata. Import from the
modules: this package file stays empty because the settings import `location`.
"""
