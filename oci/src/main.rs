//! signpath-oci: the counterpart of SignPath's `sp-oci`. `strip` and `repack` move an image's content layers out
//! of an OCI image layout tarball and back; `sign` signs the image in the tarball through the gateway's hash API.
//! The work is in the `signpath_oci` library; [`cli`] is argv, configuration and output.

mod cli;

fn main() {
    common::broken_pipe::exit_quietly_on_broken_pipe();
    std::process::exit(cli::run());
}
