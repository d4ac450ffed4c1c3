# fig5b.gp: written by dds-sim (docs/game.md); run in this folder: gnuplot fig5b.gp
mode = 'momentum'
set terminal pngcairo size 900,800 font ',11'
set output 'fig5b.png'
set termoption noenhanced
set datafile separator ','
set logscale x
set key top right
models = system("tail -n +2 fig5b.csv | cut -d, -f2 | sort -u | tr '\n' ' '")
set multiplot layout 2,1 title 'Fig. 5b: latency per device against uplink bandwidth ('.mode.' rule)'
set ylabel 'all-local latency (s)'
set yrange [0:*]
plot for [m in models] 'fig5b.csv' using ((strcol(2) eq m) ? $3 : 1/0):5 with points pt 7 ps 0.8 title m
set xlabel 'uplink (Mbit/s)'
set ylabel 'latency with DDS (s)'
plot for [m in models] 'fig5b.csv' using ((strcol(2) eq m) ? $3 : 1/0):6 with points pt 7 ps 0.8 title m
unset multiplot
