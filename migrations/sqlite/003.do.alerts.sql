-- Deposit and withdrawal events, the alerts they raised, and per-user alert thresholds.
-- user_id has no foreign key on purpose: an event for an id with no user record is accepted and
-- judged with the default (medium) thresholds.

CREATE TABLE events (
  id         INTEGER PRIMARY KEY,
  user_id    INTEGER NOT NULL CHECK (user_id >= 1),
  type       TEXT    NOT NULL CHECK (type IN ('deposit', 'withdraw')),
  amount     INTEGER NOT NULL CHECK (amount > 0), -- cents
  time       INTEGER NOT NULL CHECK (time >= 0),  -- in EVENT_TIME_UNIT, as the client sent it
  created_at TEXT    NOT NULL
) STRICT;
-- The rules read a user's latest events and windows of time through these, never the whole history.
CREATE INDEX events_user_time ON events (user_id, time, id);
CREATE INDEX events_user_type_time ON events (user_id, type, time, id);
-- A user's events page by id, newest first.
CREATE INDEX events_user_id ON events (user_id, id);

CREATE TABLE alerts (
  id         INTEGER PRIMARY KEY,
  event_id   INTEGER NOT NULL REFERENCES events (id),
  user_id    INTEGER NOT NULL,
  code       INTEGER NOT NULL CHECK (code IN (30, 123, 300, 500, 1100)),
  details    TEXT    NOT NULL CHECK (json_valid(details)), -- the figures that fired it
  created_at TEXT    NOT NULL,
  UNIQUE (event_id, code)
) STRICT;
CREATE INDEX alerts_user ON alerts (user_id, id);
CREATE INDEX alerts_code ON alerts (code, id);
CREATE INDEX alerts_user_code ON alerts (user_id, code, id);

CREATE TABLE alert_profiles (
  user_id    INTEGER PRIMARY KEY CHECK (user_id >= 1),
  risk       TEXT    NOT NULL CHECK (risk IN ('low', 'medium', 'high')),
  overrides  TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(overrides)),
  updated_at TEXT    NOT NULL
) STRICT;

CREATE VIEW alert_summary AS
  SELECT a.user_id, u.email, a.code, count(*) AS alerts, max(a.created_at) AS last_alert_at
  FROM alerts AS a
  LEFT JOIN users AS u ON u.id = a.user_id
  GROUP BY a.user_id, a.code
  ORDER BY a.user_id, a.code;

CREATE VIEW alert_details AS
  SELECT a.id AS alert_id, a.user_id, a.code, e.type, printf('%d.%02d', e.amount / 100, e.amount % 100) AS amount,
         e.time, a.details, a.created_at
  FROM alerts AS a
  JOIN events AS e ON e.id = a.event_id
  ORDER BY a.id;
