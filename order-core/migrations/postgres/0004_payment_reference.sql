-- Processor webhooks name payments by the processor's reference.
CREATE INDEX payments_processor_ref ON payments (processor_ref);
