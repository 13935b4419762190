"""The application layer: the store as the application sees it (:mod:`.ports`), and -- as the
command pipeline lands -- commands, the pipeline that runs them, one handler module per
capability and the queries. See docs/architecture.md."""
