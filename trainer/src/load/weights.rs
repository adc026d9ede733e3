//! Tensor names, spelled once. A module loads its tensors through a [`Weights`] whose
//! [`WeightPath`] its parent extended by the module's field name (candle's `VarBuilder::pp`):
//! `root.pp("model").pp("layers").pp(3).pp("self_attn").pp("q_proj")` then asks for `weight`.
//! The model's field names are transformers' module names (see `crate::model`), so the same
//! names come back out of the module tree: [`named_params`] walks it for export, and no list
//! of tensor names exists anywhere else.

use std::fmt;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};

use super::WeightSource;
use crate::error::ModelError;

/// A dotted prefix of tensor names (`model.layers.3.self_attn`); empty at the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeightPath(String);

impl WeightPath {
    pub fn root() -> Self {
        Self::default()
    }

    /// This path with one more segment: a field name or a layer index.
    pub fn pp(&self, segment: impl fmt::Display) -> Self {
        if self.0.is_empty() { Self(segment.to_string()) } else { Self(format!("{}.{segment}", self.0)) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WeightPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A weight source seen from one module: where its tensors are, and the device to put them on.
pub struct Weights<'a> {
    src: &'a mut dyn WeightSource,
    device: &'a Device,
    path: WeightPath,
}

impl<'a> Weights<'a> {
    /// The root: tensors named from the top of the checkpoint.
    pub fn new(src: &'a mut dyn WeightSource, device: &'a Device) -> Self {
        Self { src, device, path: WeightPath::root() }
    }

    /// The weights of the submodule `segment` (reborrowed: one submodule loads at a time).
    pub fn pp(&mut self, segment: impl fmt::Display) -> Weights<'_> {
        Weights { src: &mut *self.src, device: self.device, path: self.path.pp(segment) }
    }

    pub fn path(&self) -> &WeightPath {
        &self.path
    }

    /// The tensor `leaf` under this path, of exactly `shape`; the source names it on error.
    pub fn param<const D: usize>(
        &mut self,
        leaf: &str,
        shape: [usize; D],
    ) -> Result<Param<Tensor<D>>, ModelError> {
        let path = self.path.pp(leaf);
        let name = path.as_str();
        let data = self.src.take(name, &shape)?;
        let mut param = Param::from_tensor(Tensor::from_data(TensorData::new(data, shape), self.device));
        // Ids derived from the name: optimizer state saved in a checkpoint finds its parameter
        // again in a model rebuilt from that checkpoint.
        param.id = ParamId::from(name_id(name));
        Ok(param)
    }
}

/// A stable 64-bit id for a tensor name (FNV-1a).
fn name_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// One parameter of a module tree under its checkpoint name.
#[derive(Debug, Clone)]
pub struct NamedParam {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// Every float parameter of `module`, in module order, named by its path of field names and
/// `Vec` indices (burn's visitor enters no segment for an `Option`, so `lm_head: Option<Linear>`
/// is `lm_head.weight`): the names [`Weights`] loaded them from.
pub fn named_params<M: Module>(module: &M) -> Vec<NamedParam> {
    struct Walk {
        path: Vec<String>,
        out: Vec<NamedParam>,
    }
    impl ModuleVisitor for Walk {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_owned());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }

        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let tensor = param.val();
            let shape = tensor.dims().to_vec();
            self.out.push(NamedParam { name: self.path.join("."), shape, data: tensor.into_data() });
        }
    }
    let mut walk = Walk { path: Vec::new(), out: Vec::new() };
    module.visit(&mut walk);
    walk.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_segments_with_dots() {
        let root = WeightPath::root();
        assert_eq!(root.as_str(), "");
        let q = root.pp("model").pp("layers").pp(3).pp("self_attn").pp("q_proj");
        assert_eq!(q.to_string(), "model.layers.3.self_attn.q_proj");
        assert_eq!(root.pp("lm_head").pp("weight").as_str(), "lm_head.weight");
    }

    #[test]
    fn ids_are_fnv1a_of_the_name() {
        // Pinned: AdamW moments saved in checkpoints are keyed by these ids.
        assert_eq!(name_id(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(name_id("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
