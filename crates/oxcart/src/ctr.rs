//! The container verbs' command lines (docker's flags) and their dispatch. Each verb
//! answers at the top level and under `oxcart container`, as docker's do.

use crate::logs::LogsArgs;
use crate::ps::PsArgs;
use crate::runopts::RunFlags;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub flags: RunFlags,
    /// The image to run
    pub image: String,
    /// The command and its arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS period
    #[arg(long)]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS quota
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum CtrCmd {
    /// Create and run a new container from an image
    Run(Box<RunArgs>),
    /// Create a new container
    Create(Box<RunArgs>),
    /// Start one or more stopped containers
    Start {
        /// Attach STDOUT/STDERR and forward signals
        #[arg(short, long)]
        attach: bool,
        /// Attach container's STDIN
        #[arg(short, long)]
        interactive: bool,
        /// Override the key sequence for detaching a container
        #[arg(long)]
        detach_keys: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop one or more running containers
    Stop {
        /// Seconds to wait before killing the container
        #[arg(
            short = 't',
            long = "time",
            visible_alias = "timeout",
            allow_negative_numbers = true
        )]
        time: Option<i64>,
        /// Signal to send to the container
        #[arg(short, long)]
        signal: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Kill one or more running containers
    Kill {
        /// Signal to send to the container
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    #[command(visible_alias = "ls", alias = "list")]
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(Box<ExecArgs>),
    /// Attach local standard input, output, and error streams to a running container
    Attach {
        /// Do not attach STDIN
        #[arg(long)]
        no_stdin: bool,
        /// Proxy all received signals to the process
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
        sig_proxy: bool,
        /// Override the key sequence for detaching a container
        #[arg(long)]
        detach_keys: Option<String>,
        container: String,
    },
    /// Block until one or more containers stop, then print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Pause all processes within one or more containers
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Restart one or more containers
    Restart {
        /// Seconds to wait before killing the container
        #[arg(
            short = 't',
            long = "time",
            visible_alias = "timeout",
            allow_negative_numbers = true
        )]
        time: Option<i64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Rename a container
    Rename { container: String, new_name: String },
    /// Display the running processes of a container
    Top {
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Copy files/folders between a container and the local filesystem
    Cp {
        /// Archive mode (copy all uid/gid information)
        #[arg(short, long)]
        archive: bool,
        /// Always follow symbol link in SRC_PATH
        #[arg(short = 'L', long)]
        follow_link: bool,
        /// CONTAINER:SRC_PATH or SRC_PATH ("-" for a tar stream on stdin)
        src: String,
        /// DEST_PATH or CONTAINER:DEST_PATH ("-" for a tar stream on stdout)
        dest: String,
    },
    /// Inspect changes to files or directories on a container's filesystem
    Diff { container: String },
    /// Export a container's filesystem as a tar archive
    Export {
        /// Write to a file, instead of STDOUT
        #[arg(short, long)]
        output: Option<PathBuf>,
        container: String,
    },
    /// Create a new image from a container's changes
    Commit {
        /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
        #[arg(short, long)]
        author: Option<String>,
        /// Apply Dockerfile instruction to the created image
        #[arg(short, long)]
        change: Vec<String>,
        /// Commit message
        #[arg(short, long)]
        message: Option<String>,
        /// Pause container during commit
        #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
        pause: bool,
        container: String,
        repository: Option<String>,
    },
    /// Update configuration of one or more containers
    Update(Box<UpdateArgs>),
    /// Display a live stream of container(s) resource usage statistics
    Stats(crate::stats::StatsArgs),
}

#[derive(Subcommand, Debug, Clone)]
pub enum ContainerCmd {
    #[command(flatten)]
    Ctr(CtrCmd),
    /// Display detailed information on one or more containers
    Inspect {
        /// Format output using a Go template or 'json'
        #[arg(short, long)]
        format: Option<String>,
        /// Display total file sizes
        #[arg(short, long)]
        size: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove all stopped containers
    Prune {
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
        /// Provide filter values (e.g. 'label=<key>=<value>')
        #[arg(long)]
        filter: Vec<String>,
    },
    /// The monitor's exit command: tear down a run (and remove an --rm container).
    #[command(hide = true)]
    Cleanup { id: String },
}
