"""Tests of unirouter_jax.shell.host_devices: one CPU device per core by
default, the user's choice respected, clear errors. Each case runs in a
fresh interpreter (the count can only be set before JAX starts)."""

import textwrap

from absl.testing import absltest

from tests.shell import subproc


def _run(code, **extra):
  proc = subproc.run(
      ['-c', textwrap.dedent(code)],
      drop=('XLA_FLAGS', 'JAX_NUM_CPU_DEVICES'),
      JAX_PLATFORMS='cpu',
      **extra,
  )
  return proc.returncode, proc.stdout.strip(), proc.stderr


class HostDevicesTest(absltest.TestCase):

  def test_auto_is_one_device_per_core(self):
    rc, out, err = _run("""
        import jax
        from unirouter_jax.shell import host_devices as hd
        got = hd.split_cpu(0)
        want = max(1, min(hd.cores(), hd.MAX_AUTO))
        assert got == want == jax.device_count(), (got, want, jax.devices())
        print('ok', got)
        """)
    self.assertEqual(rc, 0, err)
    self.assertTrue(out.startswith('ok'), out)

  def test_the_users_choice_is_kept(self):
    code = """
        import jax
        from unirouter_jax.shell import host_devices as hd
        print(hd.user_choice(), hd.split_cpu(0), jax.device_count())
        """
    rc, out, err = _run(code, JAX_NUM_CPU_DEVICES='3')
    self.assertEqual((rc, out), (0, 'JAX_NUM_CPU_DEVICES None 3'), err)
    rc, out, err = _run(
        code, XLA_FLAGS='--xla_force_host_platform_device_count=3'
    )
    self.assertEqual((rc, out), (0, 'XLA_FLAGS None 3'), err)

  def test_explicit_count_and_errors(self):
    rc, out, err = _run("""
        import jax
        from unirouter_jax.shell import host_devices as hd
        assert hd.split_cpu(3) == 3 and jax.device_count() == 3
        assert hd.split_cpu(0) is None  # running: auto leaves it
        assert hd.split_cpu(3) in (None, 3)  # running with that count: fine
        for bad in (5, -1):
          try:
            hd.split_cpu(bad)
          except ValueError as e:
            print(e)
        """)
    self.assertEqual(rc, 0, err)
    self.assertEqual(
        out.splitlines(),
        [
            (
                '--cpu-devices 5: JAX already runs with 3 CPU device(s) in this'
                ' process; set it before any JAX computation'
            ),
            '--cpu-devices -1: expected 0 (one per core) or more',
        ],
    )


if __name__ == '__main__':
  absltest.main()
