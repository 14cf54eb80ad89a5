"""The agent DSL: parser, formatter, validation, agent definitions and the policy compiler."""
