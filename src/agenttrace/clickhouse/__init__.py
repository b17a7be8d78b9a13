"""The analyzer on ClickHouse (issue 17): engine choice, translated SQL, the tables, push."""
