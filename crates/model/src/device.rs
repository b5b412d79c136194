//! `--device cpu|cuda|cuda:N` parsing (issue 2, item 7). CPU is the default; CUDA needs the crate's
//! `cuda` feature (candle's CUDA backend, compiled with nvcc — see docs/model.md). Without it a
//! `cuda` request is a clear error instead of a silent CPU fallback.
use crate::error::{Error, Result};
use candle_core::{DType, Device};

/// A parsed device request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU (multi-threaded kernels).
    Cpu,
    /// CUDA device with this ordinal.
    Cuda(usize),
}

impl std::str::FromStr for DeviceSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            _ => match t.strip_prefix("cuda:") {
                Some(n) => n.parse().map(DeviceSpec::Cuda).map_err(|_| Error::Device {
                    spec: s.to_string(),
                    msg: format!("`{n}` is not a device ordinal (expected cpu, cuda or cuda:N)"),
                }),
                None => Err(Error::Device { spec: s.to_string(), msg: "expected cpu, cuda or cuda:N".into() }),
            },
        }
    }
}

impl DeviceSpec {
    /// Open the device.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => open_cuda(n),
        }
    }

    /// The dtype to run in by default: f32 on CPU (candle's CPU bf16 matmul is slow), bf16 on GPU.
    pub fn default_dtype(self) -> DType {
        match self {
            DeviceSpec::Cpu => DType::F32,
            DeviceSpec::Cuda(_) => DType::BF16,
        }
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(n: usize) -> Result<Device> {
    Device::new_cuda(n).map_err(|e| Error::Device { spec: format!("cuda:{n}"), msg: e.to_string() })
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(n: usize) -> Result<Device> {
    Err(Error::Device {
        spec: format!("cuda:{n}"),
        msg: "this binary was built without the `cuda` feature (rebuild with --features cuda)".into(),
    })
}

/// Parse and open a device string in one go.
pub fn parse_device(s: &str) -> Result<Device> {
    s.parse::<DeviceSpec>()?.device()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("CUDA".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        let e = "cuda:x".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(e.contains("cuda:x") && e.contains("ordinal"), "{e}");
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!(parse_device("cpu").unwrap().is_cpu());
        #[cfg(not(feature = "cuda"))]
        assert!(parse_device("cuda").unwrap_err().to_string().contains("without the `cuda` feature"));
    }
}
