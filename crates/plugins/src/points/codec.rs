//! Codecs (world `codec`): event data encoded in policy order, decoded in reverse.

use crate::*;

impl PluginRuntime {
    /// Encodes event data with the consumer's codecs, in order.
    pub fn encode_blocking(&self, subject: &Subject, data: Vec<u8>) -> Result<Encoded, PluginFailure> {
        let mut encoded = Encoded { data, codecs: Vec::new() };
        let ctx = subject.context();
        for step in self.steps_for(World::Codec, subject) {
            let result = self.transcode_step(&step, subject, &ctx, true, &encoded.data);
            match (result, step.failure_mode) {
                (Ok(_), FailureMode::Monitor) => {}
                (Ok(data), _) => {
                    encoded.data = data;
                    encoded.codecs.push(step.plugin);
                }
                (Err(error), FailureMode::FailClosed) => return Err(PluginFailure { plugin: step.plugin, error }),
                (Err(_), _) => {}
            }
        }
        Ok(encoded)
    }

    /// Decodes data encoded by `codecs` (in encoding order), with the settings the consumer's
    /// policy gives each. Any failure fails: data half decoded is of no use.
    pub fn decode_blocking(
        &self,
        subject: &Subject,
        codecs: &[String],
        data: Vec<u8>,
    ) -> Result<Vec<u8>, PluginFailure> {
        let steps = self.steps_for(World::Codec, subject);
        let ctx = subject.context();
        let mut data = data;
        for name in codecs.iter().rev() {
            let Some(step) = steps.iter().find(|s| &s.plugin == name) else {
                return Err(PluginFailure { plugin: name.clone(), error: CallError::Missing });
            };
            data = self
                .transcode_step(step, subject, &ctx, false, &data)
                .map_err(|error| PluginFailure { plugin: name.clone(), error })?;
        }
        Ok(data)
    }

    fn transcode_step(
        &self,
        step: &ResolvedStep,
        subject: &Subject,
        ctx: &Context,
        encode: bool,
        data: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        calls::check_len("the data", data.len(), self.config.max_arg_bytes)?;
        self.run_step(
            step,
            World::Codec,
            subject,
            |_| "ok",
            |engine, loaded, bounds| calls::transcode(engine, loaded, ctx, encode, data, &step.settings, bounds),
        )
    }
}
