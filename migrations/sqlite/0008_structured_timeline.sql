-- Timeline events are stored as data (a JSON detail: warroom's words, the people named, what
-- a person typed, a signal), no longer as Slack text. `text` keeps a plain-text copy (people
-- as bare ids, no markup) for whoever reads the table with SQL.
--
-- Existing rows keep a NULL detail here; warroom converts them right after the migrations run
-- (`store::convert_legacy_timeline`: warroom's mention marks become people, a leading emoji
-- becomes the signal it stood for), and reads any row still without a detail the same way.
ALTER TABLE timeline_events ADD COLUMN detail TEXT;
