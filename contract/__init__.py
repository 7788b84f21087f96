"""One contract for every input and answer: typed models shared by the API, the worker and the campaign
engine, so one place decides what is valid and what it means.

- values: address, item id, folder, Message-ID, date and flag types, with the coercions SOAR platforms need
- criteria: SearchCriteria, the one model of `search_emails`' query and a campaign's match; SearchOrder
- actions: one arguments model per `ews.*` action and the catalogue ACTIONS (name, queue, model, role by risk)
- roles: the ordered API roles and the allowed-senders rule of sends and replies
- campaign: the campaign spec, its Redis record, per-mailbox and per-item outcomes
- envelope: the result envelope of every action, found-message rows and per-item results
- errors: a pydantic ValidationError as [{"field", "message"}], never echoing input

Depends on pydantic and the standard library only: the API imports it without the worker's EWS stack.
"""
