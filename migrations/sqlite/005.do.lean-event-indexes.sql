-- Fewer per-user indexes on the POST /event write path (issue 6). Each index keyed by user puts
-- a write on another random page of a large table, and at a million events that page traffic,
-- not the reads, was most of an event's cost (the WAL and its checkpoints carry every page).
--
-- events: a user's events come in time order (an older time is refused), so per user the order
-- of (time, id) is the order of id, and one index serves the rules and the paging alike; `type`
-- rides along so the latest events are read from the index alone. Deposits get a partial
-- index of their own (with the amount): withdrawals never write to it.
DROP INDEX events_user_id;
DROP INDEX events_user_type_time;
DROP INDEX events_user_time;
CREATE INDEX events_user_time ON events (user_id, time, id, type);
CREATE INDEX events_user_deposits ON events (user_id, time, id, amount) WHERE type = 'deposit';

-- alerts: one index per user instead of two. The codes an event fires then share one page; a
-- filter by user and code walks that user's index entries (never another user's) and checks
-- the code there, without reading the table.
DROP INDEX alerts_user;
DROP INDEX alerts_user_code;
CREATE INDEX alerts_user ON alerts (user_id, id, code);
