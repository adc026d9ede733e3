//! Proves that libtorch links, loads and computes (forward and backward) on the CPU device.
use burn::tensor::{Tensor, TensorData};
use trainer::DeviceSpec;

#[test]
fn matmul_and_backward_on_libtorch_cpu() {
    let device = DeviceSpec::Cpu.training_device();
    // x: 2x3, w: 3x2; loss = sum((x @ w) ^ 2).
    let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2., 3., 4., 5., 6.], [2, 3]), &device);
    let w = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -1., 0.25, 2., -0.5, 1.], [3, 2]), &device)
        .require_grad();
    let y = x.clone().matmul(w.clone());
    // y = [[-0.5, 6.0], [0.25, 12.0]]
    y.clone()
        .into_data()
        .assert_approx_eq::<f32>(&TensorData::new(vec![-0.5f32, 6., 0.25, 12.], [2, 2]), Default::default());
    let loss = y.clone().powf_scalar(2.0).sum();
    assert!((loss.clone().into_scalar::<f32>() - (0.25 + 36. + 0.0625 + 144.)).abs() < 1e-4);

    // d loss / d w = x^T @ (2 y)
    let grads = loss.backward();
    let gw = w.grad(&grads).expect("w requires grad, so it has a gradient");
    let expected = [
        2. * (1. * -0.5 + 4. * 0.25),
        2. * (1. * 6. + 4. * 12.),
        2. * (2. * -0.5 + 5. * 0.25),
        2. * (2. * 6. + 5. * 12.),
        2. * (3. * -0.5 + 6. * 0.25),
        2. * (3. * 6. + 6. * 12.),
    ];
    gw.into_data().assert_approx_eq::<f32>(&TensorData::new(expected.to_vec(), [3, 2]), Default::default());
}
