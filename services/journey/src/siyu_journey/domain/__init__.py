"""Business rules of journeys: definitions, validation, the enrolment state machine, guardrails. No I/O."""
